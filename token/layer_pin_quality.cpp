// PinQuality: the rules a new PIN must meet ([pin] min_length,
// reject_trivial; the token's own length limits), on every backend, checked
// before anything reaches the token: a refused PIN costs no try.
// A transport PIN is the issuer's and trivial on purpose: the PIN policy
// checks only the token's limits for it (C_UkeyInitTransportPIN).
#include "token/pin_rules.h"
#include "token/stack.h"

#include <memory>

namespace ukey {

namespace {

class PinQuality final : public Layer {
public:
    explicit PinQuality(const PinRules& rules) : rules_(rules) {}

private:
    void install(Stack& s) override
    {
        take<&PinQuality::SetPIN>(s.SetPIN);
        take<&PinQuality::InitPIN>(s.InitPIN);
        take<&PinQuality::InitToken>(s.InitToken);
    }

    CK_RV SetPIN(const SessionRoute& r, CK_UTF8CHAR_PTR old_pin, CK_ULONG old_len, CK_UTF8CHAR_PTR new_pin,
                 CK_ULONG new_len)
    {
        CK_TOKEN_INFO info;
        if (CK_RV rv = below().GetTokenInfo(slot_of(r), &info); rv != CKR_OK)
            return rv;
        if (CK_RV rv = check_new_pin(new_pin, new_len, info, rules_, old_pin, old_len); rv != CKR_OK)
            return rv;
        return below().SetPIN(r, old_pin, old_len, new_pin, new_len);
    }

    CK_RV InitPIN(const SessionRoute& r, CK_UTF8CHAR_PTR pin, CK_ULONG len)
    {
        CK_TOKEN_INFO info;
        if (CK_RV rv = below().GetTokenInfo(slot_of(r), &info); rv != CKR_OK)
            return rv;
        if (CK_RV rv = check_new_pin(pin, len, info, rules_); rv != CKR_OK)
            return rv;
        return below().InitPIN(r, pin, len);
    }

    // A first initialisation sets a new SO PIN; re-initialising checks the
    // old one (the PIN policy counts that try).
    CK_RV InitToken(const SlotEntry& e, CK_UTF8CHAR_PTR pin, CK_ULONG len, CK_UTF8CHAR_PTR label)
    {
        CK_TOKEN_INFO info;
        if (CK_RV rv = read_token_info(*e.backend, e.backend_slot, info); rv != CKR_OK)
            return rv;
        if (!(info.flags & CKF_TOKEN_INITIALIZED))
            if (CK_RV rv = check_new_pin(pin, len, info, rules_); rv != CKR_OK)
                return rv;
        return below().InitToken(e, pin, len, label);
    }

    const PinRules rules_;
};

} // namespace

std::unique_ptr<Layer> make_pin_quality(const LayerContext& ctx)
{
    return std::make_unique<PinQuality>(ctx.config.pin_rules);
}

} // namespace ukey
