// P12: a browser that loads ukey's module but does not show the Key's
// certificates (what `certutil -L -h all` lists there): websites never see
// them, although the module looks registered.
#include "doctor.h"

#include "token/escape.h"

#include <filesystem>

namespace ukey::cli::doctor {

namespace {

// Whether the listing has a certificate of the token named `token` (NSS
// names them "TOKEN:LABEL" at the start of a line).
bool lists_token(const std::string& listing, const std::string& token)
{
    const std::string prefix = token + ":";
    for (std::size_t at = 0; at < listing.size();) {
        if (listing.compare(at, prefix.size(), prefix) == 0)
            return true;
        const std::size_t nl = listing.find('\n', at);
        if (nl == std::string::npos)
            break;
        at = nl + 1;
    }
    return false;
}

// Why, as far as the database tells: a registered library that is gone, or
// else a module disabled there or failing to start in it.
std::string likely_cause(const NssDb& db)
{
    std::error_code ec;
    for (const auto& m : db.modules)
        if (names_ukey_module(m.library) && !std::filesystem::exists(m.library, ec))
            return "it names ukey's module as " + escape::printable(m.library) +
                   ", which does not exist (ukey was moved or installed elsewhere since)";
    return "ukey's module is disabled there, or does not start in it";
}

} // namespace

UKEY_DOCTOR_KEY_CHECK(browser_cert_hidden, "P12.browser-cert-hidden", "P12",
                      "a browser that loads ukey's module does not show the Key's certificates",
                      "the browser's NSS database names a module file that is gone (ukey moved), or the module is "
                      "disabled there or does not start in it",
                      "register ukey's module there again (modutil -delete, then -add, the browser closed)")
{
    if (!k.info.initialized() || k.info.label().empty() || user_certs(k).empty())
        return;
    for (const auto& db : f.browsers) {
        const auto listing = f.browser_listings.find(db.dir);
        if (listing == f.browser_listings.end() || lists_token(listing->second, k.info.label()))
            continue;
        const std::string dir = escape::printable(db.dir);
        out.push_back(finding(
            browser_cert_hidden, Severity::warning, &k,
            db.browser + " loads ukey's module but does not show this Key's certificates, so websites there never "
                "see them: " + likely_cause(db),
            "close the browser, then `modutil -dbdir sql:" + dir + " -list` shows ukey's entry; remove it (`-delete "
                "NAME`) and add it again: `modutil -dbdir sql:" + dir + " -add ukey -libfile " +
                escape::printable(f.module_path) + "`"));
    }
}

} // namespace ukey::cli::doctor
