// PinPolicy's counting: the durable try (reserve, settle, verdict), the
// attempt lock, the Key's own policy laid over the local counts.
#include "token/layer_pin_policy.h"

#include "token/backend.h"
#include "token/fork.h"
#include "token/log.h"
#include "token/pin_rules.h"
#include "token/slot_id.h"

#include <algorithm>
#include <mutex>
#include <shared_mutex>

namespace ukey {

// A state that cannot be used refuses the PIN: locked if the state is
// damaged, else "failed" (no state folder, an attempt that is stuck), with
// the reason in the log.
CK_RV PinPolicy::refuse(const Error& e)
{
    log::error(e.message);
    return e.rv == CKR_PIN_LOCKED ? CKR_PIN_LOCKED : CKR_FUNCTION_FAILED;
}

PinPolicy::PinPolicy(const LayerContext& ctx)
    : sessions_(ctx.sessions), pins_(ctx.config.state_dir / "pin", ctx.config.pin_defaults, ctx.config.pin_attempt_wait),
      policies_lock_(ctx.callbacks), expired_lock_(ctx.callbacks)
{
}

void PinPolicy::install(Stack& s)
{
    take<&PinPolicy::Login>(s.Login);
    take<&PinPolicy::Logout>(s.Logout);
    take<&PinPolicy::SetPIN>(s.SetPIN);
    take<&PinPolicy::InitPIN>(s.InitPIN);
    take<&PinPolicy::UkeyInitTransportPIN>(s.UkeyInitTransportPIN);
    take<&PinPolicy::InitToken>(s.InitToken);
    take<&PinPolicy::UkeyGetPinStatus>(s.UkeyGetPinStatus);
    take<&PinPolicy::UkeySetPinLimits>(s.UkeySetPinLimits);
    take<&PinPolicy::UkeyGetSlotBackend>(s.UkeyGetSlotBackend);
    take<&PinPolicy::GetTokenInfo>(s.GetTokenInfo);
    take<&PinPolicy::GetSessionInfo>(s.GetSessionInfo);
    take<&PinPolicy::CloseSession>(s.CloseSession);
    take<&PinPolicy::CloseAllSessions>(s.CloseAllSessions);
    // What needs the login answers CKR_PIN_EXPIRED while the login is held
    // back: the functions that start something on the Key. The data phase
    // (C_Sign after C_SignInit) and the read-only ones (attributes, search,
    // digests) cannot meet a held-back login and stay free of the check.
    after<&Stack::CreateObject, &PinPolicy::expired_rv>(s);
    after<&Stack::CopyObject, &PinPolicy::expired_rv>(s);
    after<&Stack::DestroyObject, &PinPolicy::expired_rv>(s);
    after<&Stack::SetAttributeValue, &PinPolicy::expired_rv>(s);
    after<&Stack::GetOperationState, &PinPolicy::expired_rv>(s);
    after<&Stack::SetOperationState, &PinPolicy::expired_rv>(s);
    after<&Stack::EncryptInit, &PinPolicy::expired_rv>(s);
    after<&Stack::DecryptInit, &PinPolicy::expired_rv>(s);
    after<&Stack::SignInit, &PinPolicy::expired_rv>(s);
    after<&Stack::SignRecoverInit, &PinPolicy::expired_rv>(s);
    after<&Stack::VerifyInit, &PinPolicy::expired_rv>(s);
    after<&Stack::VerifyRecoverInit, &PinPolicy::expired_rv>(s);
    after<&Stack::DigestKey, &PinPolicy::expired_rv>(s);
    after<&Stack::GenerateKey, &PinPolicy::expired_rv>(s);
    after<&Stack::GenerateKeyPair, &PinPolicy::expired_rv>(s);
    after<&Stack::WrapKey, &PinPolicy::expired_rv>(s);
    after<&Stack::UnwrapKey, &PinPolicy::expired_rv>(s);
    after<&Stack::DeriveKey, &PinPolicy::expired_rv>(s);
    after<&Stack::SeedRandom, &PinPolicy::expired_rv>(s);
    after<&Stack::GenerateRandom, &PinPolicy::expired_rv>(s);
}

CK_RV PinPolicy::expired_rv(Layer* self, const SessionRoute& r, CK_RV rv)
{
    if (rv == CKR_USER_NOT_LOGGED_IN && static_cast<PinPolicy*>(self)->pin_expired(r))
        return CKR_PIN_EXPIRED;
    return rv;
}

CK_RV PinPolicy::key_of(const Backend& b, CK_SLOT_ID backend_slot, KeyId& key, CK_TOKEN_INFO& info) const
{
    CK_RV rv = read_token_info(b, backend_slot, info);
    if (rv != CKR_OK)
        return rv;
    key = key_id(b.name(), info);
    return CKR_OK;
}

Result<std::optional<KeyPolicy>> PinPolicy::key_policy(const Backend& b, CK_SLOT_ID backend_slot, const KeyId& key,
                                                       bool fresh) const
{
    if (!fresh) {
        std::shared_lock<RwLock> g(policies_lock_);
        if (auto it = policies_.find(key.identity()); it != policies_.end())
            return it->second;
    }
    auto p = read_key_policy(b, backend_slot);
    if (p)
        remember_policy(key, *p);
    else
        return Error{p.error().rv, "Key " + key_name(key) + ": " + p.error().message};
    return p;
}

void PinPolicy::warn_once(const std::string& message) const
{
    {
        std::unique_lock<RwLock> g(policies_lock_);
        if (warned_.size() >= 64 || !warned_.insert(message).second)
            return;
    }
    log::warning(message);
}

void PinPolicy::remember_policy(const KeyId& key, const std::optional<KeyPolicy>& p) const
{
    std::unique_lock<RwLock> g(policies_lock_);
    policies_[key.identity()] = p;
}

void PinPolicy::forget_policy(const KeyId& key) const
{
    std::unique_lock<RwLock> g(policies_lock_);
    policies_.erase(key.identity());
}

Result<PinCounts> PinPolicy::pin_counts(const Backend& b, CK_SLOT_ID backend_slot, const KeyId& key,
                                        bool fresh) const
{
    auto c = pins_.read(key);
    if (!c)
        return c;
    auto p = key_policy(b, backend_slot, key, fresh);
    if (!p) {
        if (p.error().rv == CKR_PIN_LOCKED)
            return p.error();
        return c; // the Key cannot be asked now: shown by the local record (logins ask again)
    }
    PinCounts out = *c;
    if (auto ok = apply_key_policy(out, *p, key_name(key)); !ok)
        return ok.error();
    return out;
}

CK_RV PinPolicy::reserve_try(const KeyId& key, PinUser who, PinCounts& after,
                             const std::optional<KeyPolicy>* policy)
{
    bool locked = false;
    std::optional<Error> untrusted;
    auto r = pins_.update(
        key,
        [&](PinCounts& c) {
            if (policy) {
                if (auto ok = apply_key_policy(c, *policy, key_name(key)); !ok) {
                    untrusted = ok.error();
                    return false;
                }
            }
            unsigned& left = who == PinUser::so ? c.so_left : c.user_left;
            if (left == 0) {
                locked = true;
                return false;
            }
            --left;
            return true;
        },
        true);
    // Fail closed: a try we cannot record is a try we do not allow.
    if (!r)
        return refuse(r.error());
    if (untrusted)
        return refuse(*untrusted);
    if (locked)
        return CKR_PIN_LOCKED;
    after = *r;
    return CKR_OK;
}

void PinPolicy::settle_try(const KeyId& key, PinUser who, Verdict v)
{
    if (v == Verdict::wrong)
        return; // the try stays taken
    // No fsync: losing this write only costs the user a try, never gains one.
    auto r = pins_.update(
        key,
        [&](PinCounts& c) {
            unsigned& left = who == PinUser::so ? c.so_left : c.user_left;
            const unsigned max = who == PinUser::so ? c.so_max : c.user_max;
            left = v == Verdict::right ? max : std::min(left + 1, max);
            return true;
        },
        false);
    if (!r)
        log::error(r.error().message);
}

PinPolicy::Verdict PinPolicy::verdict(CK_RV rv)
{
    switch (rv) {
    case CKR_OK:
        return Verdict::right;
    // Answers given before any PIN check: the try is given back.
    case CKR_USER_ALREADY_LOGGED_IN:
    case CKR_USER_ANOTHER_ALREADY_LOGGED_IN:
    case CKR_USER_TOO_MANY_TYPES:
    case CKR_USER_TYPE_INVALID:
    case CKR_USER_PIN_NOT_INITIALIZED:
    case CKR_SESSION_HANDLE_INVALID:
    case CKR_SESSION_CLOSED:
    case CKR_SESSION_READ_ONLY:
    case CKR_SESSION_READ_ONLY_EXISTS:
    case CKR_SESSION_EXISTS: // C_InitToken with a session open
    case CKR_PIN_LEN_RANGE:
    case CKR_ARGUMENTS_BAD:
    case CKR_OPERATION_NOT_INITIALIZED:
        return Verdict::unjudged;
    // Everything else, including errors that may have come after the token
    // looked at the PIN (CKR_GENERAL_ERROR, CKR_DEVICE_ERROR, CKR_DEVICE_REMOVED,
    // seen from SoftHSM2 under load): the try stays taken.
    default:
        return Verdict::wrong;
    }
}

bool PinPolicy::pin_expired(const SessionRoute& r) const
{
    if (!any_expired_.load(std::memory_order_relaxed))
        return false;
    std::shared_lock<RwLock> g(expired_lock_);
    return expired_.count(r.backend_slot) > 0;
}

void PinPolicy::set_pin_expired(const SessionRoute& r, bool expired)
{
    std::unique_lock<RwLock> g(expired_lock_);
    if (expired)
        expired_.insert(r.backend_slot);
    else
        expired_.erase(r.backend_slot);
    any_expired_ = !expired_.empty();
}

// Closing an application's last session with a token logs it out.
void PinPolicy::forget_login_if_last(const SessionRoute& r, bool closing_all)
{
    if (!pin_expired(r))
        return;
    bool others = false;
    if (!closing_all)
        sessions_.for_each([&](CK_SESSION_HANDLE, const SessionRoute& s) {
            others = others || (s.backend == r.backend && s.backend_slot == r.backend_slot && s.handle != r.handle);
        });
    if (!others)
        set_pin_expired(r, false);
}

CK_RV PinPolicy::session_user(const SessionRoute& r, PinUser& who) const
{
    CK_SESSION_INFO si;
    CK_RV rv = below().GetSessionInfo(r, &si);
    if (rv != CKR_OK)
        return rv;
    who = si.state == CKS_RW_SO_FUNCTIONS ? PinUser::so : PinUser::user;
    return CKR_OK;
}

std::unique_ptr<Layer> make_pin_policy(const LayerContext& ctx)
{
    return std::make_unique<PinPolicy>(ctx);
}

} // namespace ukey
