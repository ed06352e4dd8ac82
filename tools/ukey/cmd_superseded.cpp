// ukey cert superseded list KEY | clean KEY [--yes]: the certificates a
// renewal with --keep-old left, labelled "superseded <date>: <label>".
//
// JSON (--json): list {"superseded": [cert, ...]};
// clean {"deleted": [cert, ...], "keys_deleted": N}
// (cert: the renewal's summary, cert_common.h).
#include "cert_common.h"
#include "client/renewal.h"

#include <algorithm>
#include <iostream>

namespace ukey::cli {

namespace {

using json = nlohmann::json;

void superseded(Context& ctx, const std::string& spec, bool clean, bool yes, const PinSource& pin)
{
    client::KeyInfo k = select_key(ctx, spec);
    std::unique_ptr<client::Session> s = clean ? user_session(ctx, k, pin, true)
                                               : must(client::Session::open(ctx.module(), k.slot, false));
    auto certs = must(client::read_certificates(*s));
    json list = json::array();
    std::vector<const client::CertOnKey*> found;
    for (const auto& c : certs)
        if (client::is_superseded(c.label)) {
            found.push_back(&c);
            auto x = c.parse();
            list.push_back(x ? cert_summary(x.get(), c.label, c.id) : json{{"label", c.label}, {"id", client::to_hex(c.id)}});
        }
    if (!clean) {
        ctx.print({{"superseded", list}}, [&] {
            if (list.empty())
                std::cout << "No superseded certificates on Key '" << shown(k.label()) << "'.\n";
            for (const auto& j : list)
                std::cout << "id " << j["id"].get<std::string>() << "  '" << shown(j["label"].get<std::string>()) << "'\n";
        });
        return;
    }
    if (!found.empty() && !yes && !confirm({"Delete " + std::to_string(found.size()) +
                                            " superseded certificate(s) and their keys from Key '" + k.label() + "'?"}))
        throw Failure(cancelled, "nothing was deleted: confirm on a terminal or with --yes");
    int keys_deleted = 0;
    auto keys = must(client::read_keys(*s));
    for (const auto* c : found) {
        check(s->f()->C_DestroyObject(s->handle(), c->handle), "deleting the superseded certificate '" + c->label + "'");
        // Its key goes too, unless a current certificate still uses it.
        bool used = std::any_of(certs.begin(), certs.end(), [&](const auto& o) {
            return o.id == c->id && !client::is_superseded(o.label);
        });
        for (const auto& kk : keys)
            if (!used && kk.id == c->id && client::is_superseded(kk.label)) {
                check(s->f()->C_DestroyObject(s->handle(), kk.handle), "deleting a superseded key");
                ++keys_deleted;
            }
    }
    ctx.print({{"deleted", list}, {"keys_deleted", keys_deleted}}, [&] {
        std::cout << "Deleted " << found.size() << " superseded certificate(s) and " << keys_deleted
                  << " key object(s) from Key '" << shown(k.label()) << "'.\n";
    });
}

} // namespace

void add_superseded(CLI::App* cert, Context& ctx)
{
    auto* sup = cert->add_subcommand("superseded", "List or delete certificates superseded by a renewal (--keep-old)");
    sup->require_subcommand(1);
    static std::string spec_l, spec_c;
    static bool yes = false;
    static PinSource pin_c;
    auto* sl = sup->add_subcommand("list", "List the superseded certificates (no PIN needed)");
    sl->add_option("KEY", spec_l, key_help);
    sl->callback([&ctx] { superseded(ctx, spec_l, false, false, PinSource{}); });
    auto* sc = sup->add_subcommand("clean", "Delete the superseded certificates and their keys");
    sc->add_option("KEY", spec_c, key_help);
    sc->add_flag("-y,--yes", yes, "do not ask for confirmation");
    add_pin_options(sc, pin_c, "pin", "user PIN");
    sc->callback([&ctx] { superseded(ctx, spec_c, true, yes, pin_c); });
}

} // namespace ukey::cli
