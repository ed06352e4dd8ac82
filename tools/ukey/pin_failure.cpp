#include "pin_failure.h"

#include "messages.h"

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
    const std::string pin = so ? "SO PIN" : "PIN";
    const std::string what_locks = so ? "the SO PIN" : "the Key";
    const std::string locked_help =
        so ? "the SO PIN is locked: only re-initialising the Key (`ukey init`, which wipes it) or your issuer can help"
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
