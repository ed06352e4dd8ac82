// ukey pin verify | change | unlock
#include "cli.h"
#include "pin_failure.h"

#include <iostream>

namespace ukey::cli {

namespace {

struct PinArgs {
    std::string spec;
    bool so = false;
    PinSource pin, new_pin, so_pin;
};

nlohmann::json status_json(Context& ctx, CK_SLOT_ID slot)
{
    auto k = client::key_info(ctx.module(), slot);
    if (!k)
        return nullptr;
    return key_json(*k)["pin"];
}

void verify(Context& ctx, PinArgs& a)
{
    client::KeyInfo k = select_key(ctx, a.spec);
    client::Secret pin = read_pin(a.pin, a.so ? "SO PIN" : "user PIN");
    auto s = must(client::Session::open(ctx.module(), k.slot, a.so));
    CK_RV rv = s->login(a.so ? CKU_SO : CKU_USER, pin);
    pin.wipe();
    if (rv == CKR_PIN_EXPIRED || (rv == CKR_OK && !a.so && k.pin && (k.pin->flags & UKEY_PIN_USER_MUST_CHANGE))) {
        // Right PIN, but a transport PIN: say so, it is not ready for use.
        throw Failure(pin_must_change,
                      "the PIN is right, but it is the Key's initial PIN and must be changed before use: run "
                      "`ukey pin change`",
                      CKR_PIN_EXPIRED);
    }
    if (rv != CKR_OK) {
        if (ctx.json && (rv == CKR_PIN_INCORRECT || rv == CKR_PIN_LOCKED)) {
            // Scripts get the counts too, then the failure.
            std::cout << json_text(nlohmann::json{{"verified", false}, {"pin", status_json(ctx, k.slot)}}) << std::endl;
            ctx.json_error_done = true;
        }
        pin_failure(ctx, k, rv, a.so, "checking the PIN");
    }
    ctx.print({{"verified", true}, {"pin", status_json(ctx, k.slot)}},
              [&] { std::cout << "The " << (a.so ? "SO PIN" : "PIN") << " is right.\n"; });
}

void change(Context& ctx, PinArgs& a)
{
    client::KeyInfo k = select_key(ctx, a.spec);
    const std::string what = a.so ? "SO PIN" : "user PIN";
    client::Secret old_pin = read_pin(a.pin, "current " + what);
    client::Secret new_pin = read_new_pin(a.new_pin, "new " + what);
    check_new_pin(k, new_pin, "changing the " + what, false);
    auto s = must(client::Session::open(ctx.module(), k.slot, true));
    if (a.so) {
        CK_RV rv = s->login(CKU_SO, old_pin);
        if (rv != CKR_OK)
            pin_failure(ctx, k, rv, true, "logging in as SO");
    }
    CK_RV rv = s->f()->C_SetPIN(s->handle(), old_pin.data(), old_pin.size(), new_pin.data(), new_pin.size());
    if (rv == CKR_PIN_INCORRECT || rv == CKR_PIN_LOCKED)
        pin_failure(ctx, k, rv, a.so, "changing the PIN");
    check(rv, "changing the " + what);
    ctx.print({{"changed", true}, {"pin", status_json(ctx, k.slot)}},
              [&] { std::cout << "The " << what << " was changed.\n"; });
}

void unlock(Context& ctx, PinArgs& a)
{
    client::KeyInfo k = select_key(ctx, a.spec);
    client::Secret so_pin = read_pin(a.so_pin, "SO PIN");
    client::Secret new_pin = read_new_pin(a.new_pin, "new user PIN");
    check_new_pin(k, new_pin, "setting the new user PIN", false);
    auto s = must(client::Session::open(ctx.module(), k.slot, true));
    CK_RV rv = s->login(CKU_SO, so_pin);
    if (rv != CKR_OK)
        pin_failure(ctx, k, rv, true, "logging in as SO");
    check(s->f()->C_InitPIN(s->handle(), new_pin.data(), new_pin.size()), "setting the new user PIN");
    ctx.print({{"unlocked", true}, {"pin", status_json(ctx, k.slot)}},
              [&] { std::cout << "The user PIN is set and unlocked.\n"; });
}

} // namespace

void add_pin(CLI::App& app, Context& ctx)
{
    auto* pin = app.add_subcommand("pin", "Check, change or unlock a Key's PIN");
    pin->require_subcommand(1);
    static PinArgs a;
    const std::string key_help = "the Key: pkcs11: URI, label, serial or slot (default: the only one)";

    auto* v = pin->add_subcommand("verify", "Check a PIN without using the Key; tells the tries left if wrong");
    v->add_option("KEY", a.spec, key_help);
    v->add_flag("--so", a.so, "check the SO PIN instead of the user PIN");
    add_pin_options(v, a.pin, "pin", "PIN");
    v->callback([&ctx] { verify(ctx, a); });

    auto* c = pin->add_subcommand("change", "Change the user PIN (or with --so the SO PIN)");
    c->add_option("KEY", a.spec, key_help);
    c->add_flag("--so", a.so, "change the SO PIN");
    add_pin_options(c, a.pin, "pin", "current PIN");
    add_pin_options(c, a.new_pin, "new-pin", "new PIN");
    c->callback([&ctx] { change(ctx, a); });

    auto* u = pin->add_subcommand("unlock", "Set a new user PIN with the SO PIN, which also unlocks a locked PIN");
    u->add_option("KEY", a.spec, key_help);
    add_pin_options(u, a.so_pin, "so-pin", "SO PIN");
    add_pin_options(u, a.new_pin, "new-pin", "new user PIN");
    u->callback([&ctx] { unlock(ctx, a); });
}

} // namespace ukey::cli
