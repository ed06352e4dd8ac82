#include "pin_failure.h"
#include "token/docs.h"

#include "client/messages.h"

namespace ukey::cli {

std::optional<CK_ULONG> tries_left(Context& ctx, CK_SLOT_ID slot, bool so)
{
    const auto* v = ctx.module().vendor();
    UKEY_PIN_STATUS s{};
    if (!v || v->C_UkeyGetPinStatus(slot, &s) != CKR_OK)
        return std::nullopt;
    CK_ULONG left = so ? s.soTriesLeft : s.userTriesLeft;
    if (left == CK_UNAVAILABLE_INFORMATION)
        return std::nullopt;
    return left;
}

void pin_failure(Context& ctx, const client::KeyInfo& k, CK_RV rv, bool so, const std::string& doing)
{
    // ukey's own state refused the PIN, not the Key: say so (the module's
    // log line above names the file or folder and the fix).
    UKEY_PIN_STATUS st{};
    const auto* v = ctx.module().vendor();
    const CK_FLAGS state = v && v->C_UkeyGetPinStatus(k.slot, &st) == CKR_OK ? st.flags : 0;
    if (state & UKEY_PIN_STATE_UNAVAILABLE)
        throw Failure(setup,
                      "ukey has no state folder to count PIN tries in, so it refuses PINs: create your home folder, "
                      "or set state_dir in ukey.conf to a folder of yours (the message above names the folder)",
                      rv);
    if ((state & UKEY_PIN_STATE_DAMAGED) && (rv == CKR_PIN_LOCKED || rv == CKR_FUNCTION_FAILED))
        throw Failure(pin_locked,
                      "ukey cannot trust this Key's PIN state, so the Key is treated as locked: the message above "
                      "says what is wrong and how to repair it",
                      rv);
    if (rv == CKR_FUNCTION_FAILED)
        throw Failure(failure, doing + " failed: the message above says why", rv);
    const std::string pin = so ? "SO PIN" : "PIN";
    const std::string what_locks = so ? "the SO PIN" : "the Key";
    const std::string locked_help =
        so ? "the SO PIN is locked: ukey can neither unlock nor re-initialise this Key any more (that would let SO "
             "PINs be guessed without limit); only your issuer, or the backend's own tools, can help "
             "(" UKEY_DOC("pin-policy.md") ", \"Recovery\")"
           : "the user PIN is locked: unlock it with the SO PIN (`ukey pin unlock`) or ask your issuer";
    if (rv == CKR_PIN_INCORRECT) {
        auto left = tries_left(ctx, k.slot, so);
        if (left && *left == 0)
            throw Failure(pin_locked, "wrong " + pin + ", and that was the last try: " + locked_help, rv);
        std::string msg = "wrong " + pin;
        if (left && *left == 1)
            msg += ": 1 try left; one more wrong " + pin + " locks " + what_locks;
        else if (left)
            msg += ": " + std::to_string(*left) + " tries left before " + what_locks + " locks";
        throw Failure(wrong_pin, msg, rv);
    }
    if (rv == CKR_PIN_LOCKED)
        throw Failure(pin_locked, locked_help, rv);
    check(rv, doing);
    throw Failure(failure, doing + " failed", rv);
}

} // namespace ukey::cli
