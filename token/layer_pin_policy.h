// PinPolicy: ukey's PIN policy for the backends it counts for
// (pin_counter = "ukey"): try counting and lockout, SO unlock, transport
// PINs that must be changed (docs/pin-policy.md).
//
// A try is taken from the durable counter (fsync'd) before a PIN reaches
// the token and given back only after the token's answer: killing the
// process in between never yields a free try. Every answer is classified
// (verdict()); what cannot be recorded is refused (fail closed).
#pragma once

#include "token/key_id.h"
#include "token/key_policy.h"
#include "token/pin_store.h"
#include "token/stack.h"

#include <atomic>
#include <map>
#include <optional>
#include <set>
#include <string>

namespace ukey {

class PinPolicy final : public Layer {
public:
    explicit PinPolicy(const LayerContext& ctx);

    // Logged in with a PIN that must be changed: the token is not logged in
    // underneath, and what needs the login answers CKR_PIN_EXPIRED.
    bool pin_expired(const SessionRoute& r) const;

private:
    void install(Stack& s) override;

    enum class PinUser { user, so };
    enum class Verdict { right, wrong, unjudged };

    // The calls (layer_pin_calls.cpp).
    CK_RV Login(const SessionRoute& r, CK_USER_TYPE userType, CK_UTF8CHAR_PTR pPin, CK_ULONG ulPinLen);
    CK_RV Logout(const SessionRoute& r);
    CK_RV SetPIN(const SessionRoute& r, CK_UTF8CHAR_PTR pOldPin, CK_ULONG ulOldLen, CK_UTF8CHAR_PTR pNewPin,
                 CK_ULONG ulNewLen);
    CK_RV InitPIN(const SessionRoute& r, CK_UTF8CHAR_PTR pPin, CK_ULONG ulPinLen);
    CK_RV UkeyInitTransportPIN(const SessionRoute& r, CK_UTF8CHAR_PTR pPin, CK_ULONG ulPinLen);
    CK_RV InitToken(const SlotEntry& e, CK_UTF8CHAR_PTR pPin, CK_ULONG ulPinLen, CK_UTF8CHAR_PTR pLabel);
    CK_RV UkeyGetPinStatus(const SlotEntry& e, UKEY_PIN_STATUS* pStatus);
    CK_RV UkeySetPinLimits(const SessionRoute& r, CK_ULONG userMaxTries, CK_ULONG soMaxTries);
    CK_RV UkeyGetSlotBackend(const SlotEntry& e, UKEY_SLOT_BACKEND* pInfo);
    CK_RV GetTokenInfo(const SlotEntry& e, CK_TOKEN_INFO_PTR pInfo);
    CK_RV GetSessionInfo(const SessionRoute& r, CK_SESSION_INFO_PTR pInfo);
    CK_RV CloseSession(const SessionRoute& r);
    CK_RV CloseAllSessions(const SlotEntry& e);
    static CK_RV expired_rv(Layer* self, const SessionRoute& r, CK_RV rv);

    // The counting (layer_pin_policy.cpp).
    CK_RV key_of(const Backend& b, CK_SLOT_ID backend_slot, KeyId& key, CK_TOKEN_INFO& info) const;
    // The policy the Key carries (key_policy.h): `fresh` reads the Key,
    // else the copy cached per Key is used when there is one.
    Result<std::optional<KeyPolicy>> key_policy(const Backend& b, CK_SLOT_ID backend_slot, const KeyId& key,
                                                bool fresh) const;
    void remember_policy(const KeyId& key, const std::optional<KeyPolicy>& p) const;
    void forget_policy(const KeyId& key) const;
    // Logs a warning unless this layer already logged the same one.
    void warn_once(const std::string& message) const;
    // The counts as enforced: the local record under the Key's policy.
    Result<PinCounts> pin_counts(const Backend& b, CK_SLOT_ID backend_slot, const KeyId& key, bool fresh) const;
    // Takes one try, durably, before a PIN goes to the token; with a policy,
    // the local record first takes the Key's limits and mark.
    CK_RV reserve_try(const KeyId& key, PinUser who, PinCounts& after, const std::optional<KeyPolicy>* policy);
    void settle_try(const KeyId& key, PinUser who, Verdict v);
    template <class Ask>
    CK_RV attempt(const SessionRoute& r, PinUser who, PinCounts& counts, Ask&& ask_token);
    static Verdict verdict(CK_RV rv);
    static CK_RV refuse(const Error& e);
    void set_pin_expired(const SessionRoute& r, bool expired);
    void forget_login_if_last(const SessionRoute& r, bool closing_all);
    CK_RV session_user(const SessionRoute& r, PinUser& who) const;
    CK_RV check_transport_pin(const SessionRoute& r, CK_UTF8CHAR_PTR pin, CK_ULONG len);
    CK_RV set_user_pin(const SessionRoute& r, CK_UTF8CHAR_PTR pPin, CK_ULONG ulPinLen, bool transport);

    const SessionTable& sessions_;
    PinStore pins_;
    mutable RwLock policies_lock_;
    mutable std::map<std::string, std::optional<KeyPolicy>> policies_; // by Key identity
    mutable std::set<std::string> warned_;                            // warn_once(), under policies_lock_
    mutable RwLock expired_lock_;
    std::set<CK_SLOT_ID> expired_; // backend slots logged in with a PIN to be changed
    std::atomic<bool> any_expired_{false};
};

} // namespace ukey
