// ukey init: initialise a Key (wipes it), set its SO PIN, user or transport
// PIN and try limits.
#include "cli.h"
#include "pin_failure.h"

#include <cstring>
#include <iostream>

namespace ukey::cli {

namespace {

struct InitArgs {
    std::string spec;
    std::string label;
    unsigned tries = 0, so_tries = 0;
    bool transport = false;
    bool yes = false;
    PinSource so_pin, pin;
};

void run(Context& ctx, InitArgs& a)
{
    client::KeyInfo k = select_key(ctx, a.spec, true);
    if (k.initialized() && !a.yes) {
        const std::string what = "Key '" + k.label() + "' (serial " + k.serial() + ")";
        switch (ask({"Initialising " + what + " deletes every key and certificate on it. Continue?"})) {
        case Answer::yes:
            break;
        case Answer::no:
            throw Failure(cancelled, "nothing was changed");
        case Answer::no_terminal:
            throw Failure(cancelled, "nothing was changed: initialising " + what +
                                         " wipes it; confirm on a terminal or with --yes");
        }
    }
    if (a.label.size() > 32)
        throw Failure(usage, "the label is longer than 32 bytes");
    if ((a.tries || a.so_tries) && !ctx.module().vendor())
        throw Failure(setup, "--tries needs ukey's module; " + ctx.module().path() + " is another");

    // Re-initialising checks the current SO PIN, which stays the SO PIN.
    client::Secret so = k.initialized() ? read_pin(a.so_pin, "SO PIN") : read_new_pin(a.so_pin, "new SO PIN");
    client::Secret user = read_new_pin(a.pin, a.transport ? "transport PIN" : "new user PIN");
    // Every check before the Key is touched: a PIN refused halfway would
    // leave it initialised without a user PIN.
    if (!k.initialized())
        check_new_pin(k, so, "setting the SO PIN", false);
    check_new_pin(k, user, a.transport ? "setting the transport PIN" : "setting the user PIN", a.transport);

    CK_UTF8CHAR label[32];
    std::memset(label, ' ', sizeof label);
    std::memcpy(label, a.label.data(), a.label.size());
    ctx.progress("Initialising the Key...\n");
    CK_RV rv = ctx.module().f()->C_InitToken(k.slot, so.data(), so.size(), label);
    if (rv == CKR_PIN_INCORRECT || rv == CKR_PIN_LOCKED)
        pin_failure(ctx, k, rv, true, "initialising the Key");
    check(rv, "initialising the Key");

    auto s = must(client::Session::open(ctx.module(), k.slot, true));
    check(s->login(CKU_SO, so), "logging in as SO after initialising");
    if (const auto* v = ctx.module().vendor()) {
        // The limits are written on the Key even when not given, so that
        // ukey on any account or machine applies this issuer's limits, not
        // its own defaults (docs/pin-policy.md).
        UKEY_PIN_STATUS st{};
        const bool counted = v->C_UkeyGetPinStatus(k.slot, &st) == CKR_OK && (st.flags & UKEY_PIN_COUNTED_BY_UKEY);
        if (counted || a.tries || a.so_tries) {
            auto limit = [](unsigned given, CK_ULONG now) -> CK_ULONG {
                return given ? given : (now >= 1 && now <= 15 ? now : 6);
            };
            check(v->C_UkeySetPinLimits(s->handle(), limit(a.tries, st.userMaxTries), limit(a.so_tries, st.soMaxTries)),
                  "setting the PIN try limits");
        }
    }
    if (a.transport) {
        if (!ctx.module().vendor())
            throw Failure(setup, "--transport-pin needs ukey's module; " + ctx.module().path() + " is another");
        check(ctx.module().vendor()->C_UkeyInitTransportPIN(s->handle(), user.data(), user.size()),
              "setting the transport PIN");
    } else {
        check(s->f()->C_InitPIN(s->handle(), user.data(), user.size()), "setting the user PIN");
    }
    s.reset();

    // The Key now has a serial, so an ID of its own (docs/architecture.md):
    // report that one, which every later command accepts.
    auto after = must(client::key_info(ctx.module(), k.slot));
    for (const auto& other : must(client::list_keys(ctx.module())))
        if (other.initialized() && other.serial() == after.serial() && other.backend_name() == after.backend_name())
            after = other;
    ctx.print({{"initialized", true}, {"key", key_json(after)}}, [&] {
        std::cout << "Key '" << shown(after.label()) << "' is initialised (serial " << shown(after.serial()) << ").\n";
        if (a.transport)
            std::cout << "Its PIN is a transport PIN: the user must change it at first use (`ukey pin change`).\n";
    });
}

} // namespace

void add_init(CLI::App& app, Context& ctx)
{
    static InitArgs a;
    auto* cmd = app.add_subcommand("init", "Initialise a Key: wipes it and sets its label, SO PIN and user PIN");
    cmd->add_option("KEY", a.spec, "the Key (default: the only uninitialised one)");
    cmd->add_option("--label", a.label, "the Key's label (up to 32 bytes)")->required();
    cmd->add_option("--tries", a.tries, "wrong user PINs before the Key locks (1-15, default 6)")
        ->check(CLI::Range(1, 15));
    cmd->add_option("--so-tries", a.so_tries, "wrong SO PINs before the SO PIN locks (1-15, default 6)")
        ->check(CLI::Range(1, 15));
    cmd->add_flag("--transport-pin", a.transport,
                  "the user PIN given is a transport PIN (such as 1111) that must be changed at first use");
    cmd->add_flag("-y,--yes", a.yes, "do not ask before wiping an initialised Key");
    add_pin_options(cmd, a.so_pin, "so-pin", "SO PIN");
    add_pin_options(cmd, a.pin, "pin", "user PIN (or transport PIN)");
    cmd->callback([&ctx] { run(ctx, a); });
}

} // namespace ukey::cli
