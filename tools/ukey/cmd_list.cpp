// ukey list, ukey info: what Keys are there, and what is on one.
#include "client/certs.h"
#include "cli.h"

#include <iostream>

namespace ukey::cli {

namespace {

nlohmann::json tries(CK_ULONG left, CK_ULONG max, bool locked)
{
    nlohmann::json j;
    j["tries_left"] = left == CK_UNAVAILABLE_INFORMATION ? nlohmann::json(nullptr) : nlohmann::json(left);
    j["max_tries"] = max == CK_UNAVAILABLE_INFORMATION ? nlohmann::json(nullptr) : nlohmann::json(max);
    j["locked"] = locked;
    return j;
}

std::string tries_text(const nlohmann::json& t)
{
    if (t["locked"].get<bool>())
        return "LOCKED";
    if (t["tries_left"].is_null())
        return "counted by the Key";
    std::string s = std::to_string(t["tries_left"].get<unsigned long>());
    if (!t["max_tries"].is_null())
        s += " of " + std::to_string(t["max_tries"].get<unsigned long>());
    return s + " tries left";
}

// Certificates: how many, and the one that expires first.
void add_certificates(Context& ctx, const client::KeyInfo& k, nlohmann::json& j)
{
    j["certificates"] = nullptr;
    j["nearest_expiry"] = nullptr;
    if (!k.initialized())
        return;
    auto s = client::Session::open(ctx.module(), k.slot, false);
    if (!s)
        return;
    auto certs = client::read_certificates(**s);
    if (!certs)
        return;
    j["certificates"] = certs->size();
    const std::time_t now = std::time(nullptr);
    std::optional<std::time_t> nearest;
    std::string label;
    for (const auto& c : *certs) {
        auto x = c.parse();
        if (!x)
            continue;
        auto t = client::not_after(x.get());
        if (t && (!nearest || *t < *nearest)) {
            nearest = t;
            label = c.label;
        }
    }
    if (nearest)
        j["nearest_expiry"] = {{"not_after", client::iso8601(*nearest)},
                               {"days_left", client::days_until(*nearest, now)},
                               {"label", label}};
}

void print_key(const nlohmann::json& j)
{
    std::cout << "Key '" << shown(j["label"].get<std::string>()) << "'";
    if (!j["serial"].get<std::string>().empty())
        std::cout << "  serial " << shown(j["serial"].get<std::string>());
    std::cout << "  (" << (j["backend"].is_null() ? "" : shown(j["backend"].get<std::string>()) + ", ")
              << shown(j["manufacturer"].get<std::string>()) << " " << shown(j["model"].get<std::string>()) << ")\n";
    std::cout << "  slot " << j["slot"].get<unsigned long>();
    if (!j["initialized"].get<bool>()) {
        std::cout << ", NOT INITIALISED: set it up with `ukey init`\n";
        return;
    }
    std::cout << ", initialised\n";
    if (!j["pin"].is_null()) {
        const auto& p = j["pin"];
        std::cout << "  user PIN: " << tries_text(p["user"]) << "; SO PIN: " << tries_text(p["so"]);
        if (p["must_change"].get<bool>())
            std::cout << "; the PIN must be changed (`ukey pin change`)";
        if (p["state_damaged"].get<bool>())
            std::cout << "; PIN STATE DAMAGED (see the log)";
        std::cout << "\n";
    }
    if (!j["certificates"].is_null()) {
        std::cout << "  " << j["certificates"].get<std::size_t>() << " certificate(s)";
        if (!j["nearest_expiry"].is_null()) {
            const auto& e = j["nearest_expiry"];
            long days = e["days_left"].get<long>();
            std::cout << ", nearest expiry " << e["not_after"].get<std::string>().substr(0, 10)
                      << (days < 0 ? " (EXPIRED " + std::to_string(-days) + " days ago)"
                                   : " (" + std::to_string(days) + " days left)");
        }
        std::cout << "\n";
    }
}

} // namespace

nlohmann::json key_json(const client::KeyInfo& k)
{
    nlohmann::json j;
    j["slot"] = k.slot;
    j["backend"] = k.backend ? nlohmann::json(k.backend_name()) : nlohmann::json(nullptr);
    j["reader"] = k.reader();
    j["label"] = k.label();
    j["manufacturer"] = k.manufacturer();
    j["model"] = k.model();
    j["serial"] = k.serial();
    j["initialized"] = k.initialized();
    j["pin_min_length"] = k.token.ulMinPinLen;
    j["pin_max_length"] = k.token.ulMaxPinLen;
    const CK_FLAGS f = k.token.flags;
    if (!k.initialized()) {
        j["pin"] = nullptr;
    } else if (k.pin) {
        const auto& p = *k.pin;
        const bool damaged = p.flags & UKEY_PIN_STATE_DAMAGED;
        j["pin"] = {{"counted_by", (p.flags & UKEY_PIN_COUNTED_BY_UKEY) ? "ukey" : "token"},
                    {"user", tries(p.userTriesLeft, p.userMaxTries, damaged || p.userTriesLeft == 0)},
                    {"so", tries(p.soTriesLeft, p.soMaxTries, damaged || p.soTriesLeft == 0)},
                    {"must_change", bool(p.flags & UKEY_PIN_USER_MUST_CHANGE)},
                    {"state_damaged", damaged}};
    } else {
        // Not ukey's module: only the standard flags are known.
        auto from_flags = [&](CK_FLAGS locked, CK_FLAGS final_try) {
            return tries((f & locked) ? 0 : (f & final_try) ? 1 : CK_UNAVAILABLE_INFORMATION,
                         CK_UNAVAILABLE_INFORMATION, f & locked);
        };
        j["pin"] = {{"counted_by", "token"},
                    {"user", from_flags(CKF_USER_PIN_LOCKED, CKF_USER_PIN_FINAL_TRY)},
                    {"so", from_flags(CKF_SO_PIN_LOCKED, CKF_SO_PIN_FINAL_TRY)},
                    {"must_change", bool(f & CKF_USER_PIN_TO_BE_CHANGED)},
                    {"state_damaged", false}};
    }
    return j;
}

void add_list(CLI::App& app, Context& ctx)
{
    auto* cmd = app.add_subcommand("list", "List every Key present, with its PIN and certificate state");
    cmd->callback([&ctx] {
        auto keys = must(client::list_keys(ctx.module()));
        nlohmann::json doc = {{"keys", nlohmann::json::array()}};
        for (const auto& k : keys) {
            nlohmann::json j = key_json(k);
            add_certificates(ctx, k, j);
            doc["keys"].push_back(j);
        }
        ctx.print(doc, [&] {
            if (keys.empty())
                std::cout << "No Key found: is it plugged in? (`ukey info` or the log say more)\n";
            for (const auto& j : doc["keys"])
                print_key(j);
        });
    });
}

void add_info(CLI::App& app, Context& ctx)
{
    auto* cmd = app.add_subcommand("info", "Everything about one Key, with the objects on it");
    static std::string spec;
    cmd->add_option("KEY", spec, "the Key: pkcs11: URI, label, serial or slot (default: the only one)");
    cmd->callback([&ctx] {
        client::KeyInfo k = select_key(ctx, spec);
        nlohmann::json j = key_json(k);
        add_certificates(ctx, k, j);
        j["objects"] = nlohmann::json::array();
        if (k.initialized()) {
            auto s = must(client::Session::open(ctx.module(), k.slot, false));
            for (CK_OBJECT_HANDLE h : must(s->find({}))) {
                nlohmann::json o;
                auto cls = s->ulong_attribute(h, CKA_CLASS);
                static const char* names[] = {"data", "certificate", "public-key", "private-key", "secret-key"};
                o["class"] = cls && *cls < 5 ? names[*cls] : "other";
                o["label"] = must(s->string_attribute(h, CKA_LABEL));
                auto id = must(s->attribute(h, CKA_ID));
                o["id"] = id ? client::to_hex(*id) : "";
                j["objects"].push_back(o);
            }
        }
        ctx.print(j, [&] {
            print_key(j);
            std::cout << "  reader: " << shown(j["reader"].get<std::string>()) << "\n";
            std::cout << "  PIN length: " << j["pin_min_length"].get<unsigned long>() << "-"
                      << j["pin_max_length"].get<unsigned long>() << "\n";
            std::cout << "  objects (without logging in: private keys are not shown):\n";
            for (const auto& o : j["objects"])
                std::cout << "    " << o["class"].get<std::string>() << "  id " << o["id"].get<std::string>()
                          << "  '" << shown(o["label"].get<std::string>()) << "'\n";
        });
    });
}

} // namespace ukey::cli
