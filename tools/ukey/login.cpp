// Logging the user in for a command, and reading ids from the command line.
#include "cli.h"
#include "pin_failure.h"
#include "client/x509.h"

namespace ukey::cli {

// Opens a session on `k` and logs the user in with the PIN from `src`.
std::unique_ptr<client::Session> user_session(Context& ctx, const client::KeyInfo& k, const PinSource& src,
                                              bool read_write)
{
    // A transport PIN logs in, but the Key then shows and does nothing: say so
    // before asking for it.
    if (k.pin && (k.pin->flags & UKEY_PIN_USER_MUST_CHANGE))
        throw Failure(pin_must_change,
                      "Key '" + k.label() + "' still has its initial (transport) PIN, which must be changed before "
                      "use: run `ukey pin change`",
                      CKR_PIN_EXPIRED);
    client::Secret pin = read_pin(src, "user PIN");
    auto s = must(client::Session::open(ctx.module(), k.slot, read_write));
    CK_RV rv = s->login(CKU_USER, pin);
    pin.wipe();
    if (rv != CKR_OK)
        pin_failure(ctx, k, rv, false, "logging in to the Key");
    return s;
}

// Parses --id: hex digits (colons and spaces allowed).
client::Bytes parse_id(const std::string& text, const std::string& option)
{
    auto id = client::from_hex(text);
    if (!id || id->empty())
        throw Failure(usage, option + " '" + text + "' is not an id: give it in hex, such as 01 or 3f2a9c");
    return *id;
}

} // namespace ukey::cli
