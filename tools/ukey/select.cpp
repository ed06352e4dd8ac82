// Which Key a command works on: an RFC 7512 URI (parsed by p11-kit), a
// label, a serial, a slot ID, or nothing when exactly one Key is present.
#include "cli.h"

#include <p11-kit/uri.h>

#include <sys/stat.h>

namespace ukey::cli {

namespace {

std::string describe(const client::KeyInfo& k)
{
    std::string s = "'" + (k.initialized() ? k.label() : std::string("(not initialised)")) + "'";
    s += " serial " + (k.serial().empty() ? std::string("-") : k.serial());
    s += " slot " + std::to_string(k.slot);
    if (!k.backend_name().empty())
        s += " backend " + k.backend_name();
    return s;
}

// One line per Key, below the failure's sentence (Failure::lines).
std::vector<std::string> candidates(const std::vector<client::KeyInfo>& keys)
{
    std::vector<std::string> lines;
    for (const auto& k : keys)
        lines.push_back(describe(k));
    return lines;
}


std::string nothing_found_hint()
{
    struct stat st;
    if (stat("/run/pcscd/pcscd.comm", &st) != 0)
        return "no Key found: is it plugged in? The smart-card service (pcscd) is not running: start it with "
               "`systemctl start pcscd.socket`";
    return "no Key found: is it plugged in all the way? If it is, `ukey list` and the log (journalctl) say more";
}

} // namespace

client::KeyInfo select_key(Context& ctx, const std::string& spec, bool want_uninitialised)
{
    auto keys = must(client::list_keys(ctx.module()));
    if (keys.empty())
        throw Failure(no_key, nothing_found_hint());

    std::vector<client::KeyInfo> found;
    if (spec.empty()) {
        for (const auto& k : keys)
            if (k.initialized() != want_uninitialised)
                found.push_back(k);
        if (found.empty())
            found = keys;
        if (found.size() == 1)
            return found[0];
        throw Failure(ambiguous, std::to_string(found.size()) + " Keys are present; name one by label, serial, "
                                                                "slot or pkcs11: URI:",
                      CKR_OK, candidates(found));
    }

    std::unique_ptr<P11KitUri, void (*)(P11KitUri*)> uri(nullptr, p11_kit_uri_free);
    if (spec.rfind("pkcs11:", 0) == 0) {
        uri.reset(p11_kit_uri_new());
        // Parsed for any part, so an object URI (…;object=k;type=private)
        // selects its token; only the token part is compared.
        int rc = p11_kit_uri_parse(spec.c_str(), P11_KIT_URI_FOR_ANY, uri.get());
        if (rc != P11_KIT_URI_OK) {
            // Quoted back unless it might carry a PIN.
            const std::string what = spec.find("pin-") == std::string::npos ? "'" + spec + "'" : "that";
            throw Failure(usage, what + " is not a valid PKCS#11 URI: " + std::string(p11_kit_uri_message(rc)));
        }
        if (p11_kit_uri_get_pin_value(uri.get()) || p11_kit_uri_get_pin_source(uri.get()))
            throw Failure(usage, "ukey takes no PIN from a URI (pin-value, pin-source): use --pin-fd, --pin-file "
                                 "or the prompt");
        if (p11_kit_uri_any_unrecognized(uri.get()))
            throw Failure(usage, "the URI has an attribute ukey does not know (RFC 7512 token attributes are token, "
                                 "manufacturer, model, serial; slot-id, slot-description, slot-manufacturer)");
    }
    for (const auto& k : keys)
        if (client::key_matches(k, spec, uri.get()))
            found.push_back(k);
    if (found.size() == 1)
        return found[0];
    if (found.empty())
        throw Failure(no_key, "no Key matches '" + spec + "'; the Keys present are:", CKR_OK, candidates(keys));
    throw Failure(ambiguous, std::to_string(found.size()) + " Keys match '" + spec +
                                 "'; name one by serial or slot:", CKR_OK,
                      candidates(found));
}

} // namespace ukey::cli
