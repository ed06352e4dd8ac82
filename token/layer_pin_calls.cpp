// PinPolicy's calls: Login, Logout, SetPIN, InitPIN (the unlock), transport
// PINs, InitToken, and what the token and the session show of the counts.
#include "token/layer_pin_policy.h"

#include "token/backend.h"
#include "token/fork.h"
#include "token/log.h"
#include "token/pin_rules.h"
#include "token/slot_id.h"

#include <cstdio>
#include <cstring>

namespace ukey {

namespace {
std::string rv_name(CK_RV rv)
{
    char buf[32];
    std::snprintf(buf, sizeof buf, "CK_RV 0x%lx", static_cast<unsigned long>(rv));
    return buf;
}
} // namespace

// One PIN attempt on a Key: its policy read, the attempt lock, a try taken
// before the PIN goes to the token, the token's answer, the try settled.
template <class Ask>
CK_RV PinPolicy::attempt(const SessionRoute& r, PinUser who, PinCounts& counts, Ask&& ask_token)
{
    // Read before the lock: it is a few backend calls, and other processes'
    // attempts need not wait for them.
    auto policy = key_policy(*r.backend, r.backend_slot, *r.key, true);
    if (!policy) {
        log::error(policy.error().message);
        return policy.error().rv;
    }
    // No fork() while the attempt lock is held: a child that kept a copy of
    // its descriptor would keep the Key's logins locked until it exits.
    ForkGuard no_fork_meanwhile;
    auto lock = pins_.lock_attempts(*r.key);
    if (!lock)
        return refuse(lock.error());
    if (CK_RV rv = reserve_try(*r.key, who, counts, &*policy); rv != CKR_OK)
        return rv;
    CK_RV rv = ask_token();
    settle_try(*r.key, who, verdict(rv));
    return rv;
}

CK_RV PinPolicy::GetTokenInfo(const SlotEntry& e, CK_TOKEN_INFO_PTR pInfo)
{
    CK_RV rv = below().GetTokenInfo(e, pInfo);
    if (rv == CKR_OK && (pInfo->flags & CKF_TOKEN_INITIALIZED))
        apply_pin_flags(*pInfo, pin_counts(*e.backend, e.backend_slot, key_id(e.backend->name(), *pInfo), false));
    return rv;
}

CK_RV PinPolicy::GetSessionInfo(const SessionRoute& r, CK_SESSION_INFO_PTR pInfo)
{
    CK_RV rv = below().GetSessionInfo(r, pInfo);
    // Logged in with a PIN that must be changed: the token is logged out
    // underneath, the application is told it is logged in.
    if (rv == CKR_OK && pin_expired(r))
        pInfo->state = (pInfo->flags & CKF_RW_SESSION) ? CKS_RW_USER_FUNCTIONS : CKS_RO_USER_FUNCTIONS;
    return rv;
}

// A session the backend already dropped is closed all the same (the router
// forgets it on these answers).
CK_RV PinPolicy::CloseSession(const SessionRoute& r)
{
    CK_RV rv = below().CloseSession(r);
    if (rv == CKR_OK || rv == CKR_SESSION_HANDLE_INVALID || rv == CKR_SESSION_CLOSED || rv == CKR_DEVICE_REMOVED ||
        rv == CKR_TOKEN_NOT_PRESENT)
        forget_login_if_last(r, false);
    return rv;
}

CK_RV PinPolicy::CloseAllSessions(const SlotEntry& e)
{
    SessionRoute any{e.backend, CK_INVALID_HANDLE, 0, e.backend_slot, 0, nullptr};
    CK_RV rv = below().CloseAllSessions(e);
    if (rv == CKR_OK || rv == CKR_DEVICE_REMOVED || rv == CKR_TOKEN_NOT_PRESENT)
        forget_login_if_last(any, true);
    return rv;
}

CK_RV PinPolicy::UkeyGetSlotBackend(const SlotEntry& e, UKEY_SLOT_BACKEND* pInfo)
{
    CK_RV rv = below().UkeyGetSlotBackend(e, pInfo);
    if (rv == CKR_OK)
        pInfo->flags |= UKEY_PIN_COUNTED_BY_UKEY;
    return rv;
}

CK_RV PinPolicy::Login(const SessionRoute& r, CK_USER_TYPE userType, CK_UTF8CHAR_PTR pPin, CK_ULONG ulPinLen)
{
    const bool known_type = userType == CKU_USER || userType == CKU_SO || userType == CKU_CONTEXT_SPECIFIC;
    // A session on an uninitialised token has no Key to count for.
    if (!r.key)
        return below().Login(r, userType, pPin, ulPinLen);
    // A vendor's user type may check a PIN ukey has no count for: passed on,
    // it would be an uncounted guess, even with the Key locked.
    if (!known_type)
        return CKR_USER_TYPE_INVALID;
    if (userType == CKU_USER && pin_expired(r))
        return CKR_USER_ALREADY_LOGGED_IN;

    // The Key is the one the session was opened on: never re-read here, so
    // an odd answer from the token cannot charge the try to another record.
    const PinUser who = userType == CKU_SO ? PinUser::so : PinUser::user;
    PinCounts counts;
    // reserve_try has filled `counts` (the Key's must-change mark included)
    // by the time the token is asked.
    const auto held_back = [&] { return userType == CKU_USER && counts.user_must_change; };
    CK_RV rv = attempt(r, who, counts, [&] {
        if (held_back())
            return check_transport_pin(r, pPin, ulPinLen);
        return below().Login(r, userType, pPin, ulPinLen);
    });
    // Only C_SetPIN may follow: calls that need a login answer
    // CKR_PIN_EXPIRED until the PIN is changed.
    if (rv == CKR_OK && held_back())
        set_pin_expired(r, true);
    return rv;
}

CK_RV PinPolicy::check_transport_pin(const SessionRoute& r, CK_UTF8CHAR_PTR pin, CK_ULONG len)
{
    // A PIN that must be changed is checked without logging the token in:
    // a login, even one undone at once, is the whole application's, and
    // its other sessions (threads) could use it meanwhile. C_SetPIN of the
    // PIN to itself, in a public R/W session of ukey's own, checks it and
    // changes nothing.
    SessionRoute own = r;
    own.handle = CK_INVALID_HANDLE;
    CK_RV rv = below().OpenSession(slot_of(r), CKF_SERIAL_SESSION | CKF_RW_SESSION, nullptr, nullptr, &own.handle);
    if (rv == CKR_SESSION_READ_WRITE_SO_EXISTS)
        return CKR_USER_ANOTHER_ALREADY_LOGGED_IN;
    if (rv != CKR_OK)
        return rv;
    CK_SESSION_INFO si{};
    rv = below().GetSessionInfo(own, &si);
    // Logged in already (another session): what C_Login would answer.
    if (rv == CKR_OK && si.state != CKS_RW_PUBLIC_SESSION)
        rv = si.state == CKS_RW_SO_FUNCTIONS ? CKR_USER_ANOTHER_ALREADY_LOGGED_IN : CKR_USER_ALREADY_LOGGED_IN;
    else if (rv == CKR_OK)
        rv = below().SetPIN(own, pin, len, pin, len);
    below().CloseSession(own);
    return rv;
}

CK_RV PinPolicy::Logout(const SessionRoute& r)
{
    if (pin_expired(r)) {
        set_pin_expired(r, false);
        return CKR_OK; // the token itself was never left logged in
    }
    return below().Logout(r);
}

CK_RV PinPolicy::SetPIN(const SessionRoute& r, CK_UTF8CHAR_PTR pOldPin, CK_ULONG ulOldLen, CK_UTF8CHAR_PTR pNewPin,
                    CK_ULONG ulNewLen)
{
    if (!r.key)
        return below().SetPIN(r, pOldPin, ulOldLen, pNewPin, ulNewLen);

    PinUser who;
    if (CK_RV rv = session_user(r, who); rv != CKR_OK)
        return rv;
    PinCounts counts;
    CK_RV rv = attempt(r, who, counts, [&] {
        return below().SetPIN(r, pOldPin, ulOldLen, pNewPin, ulNewLen);
    });
    if (rv == CKR_OK && who == PinUser::user && counts.user_must_change) {
        if (pin_expired(r)) {
            // The login that was held back can now take effect.
            below().Login(r, CK_USER_TYPE(CKU_USER), pNewPin, ulNewLen);
            set_pin_expired(r, false);
        }
        if (counts.policy_on_key) {
            // The mark travels with the Key: cleared there, for every account.
            const KeyPolicy p{counts.user_max, counts.so_max, false};
            if (CK_RV w = write_key_policy(*r.backend, r.backend_slot, p); w != CKR_OK)
                log::error("Key " + key_name(*r.key) + ": the PIN was changed, but the Key's must-change mark " +
                           "could not be cleared (" + rv_name(w) + "): it will ask for a new PIN again");
            else
                remember_policy(*r.key, p);
        }
        auto done = pins_.update(*r.key, [](PinCounts& c) { c.user_must_change = false; return true; }, true);
        if (!done)
            log::error(done.error().message);
    }
    return rv;
}

CK_RV PinPolicy::InitPIN(const SessionRoute& r, CK_UTF8CHAR_PTR pPin, CK_ULONG ulPinLen)
{
    return set_user_pin(r, pPin, ulPinLen, false);
}

CK_RV PinPolicy::UkeyInitTransportPIN(const SessionRoute& r, CK_UTF8CHAR_PTR pPin, CK_ULONG ulPinLen)
{
    return set_user_pin(r, pPin, ulPinLen, true);
}

// C_InitPIN in an SO session: the unlock. A new user PIN, the full count, no
// lock; a transport PIN (the issuer's default, often 1111 or 123456, trivial
// on purpose: only the token's length limits apply) must then be changed.
CK_RV PinPolicy::set_user_pin(const SessionRoute& r, CK_UTF8CHAR_PTR pPin, CK_ULONG ulPinLen, bool transport)
{
    const bool counted = r.key != nullptr;
    if (transport && !r.key)
        return CKR_TOKEN_NOT_RECOGNIZED;
    // The new user PIN's rules were checked above this layer (PinQuality);
    // a transport PIN is the issuer's, trivial on purpose: only the token's
    // own length limits apply.
    if (transport) {
        CK_TOKEN_INFO info;
        if (CK_RV rv = below().GetTokenInfo(slot_of(r), &info); rv != CKR_OK)
            return rv;
        if (CK_RV rv = check_new_pin(pPin, ulPinLen, info, PinRules{false, 0}); rv != CKR_OK)
            return rv;
    }
    CK_RV rv = below().InitPIN(r, pPin, ulPinLen);
    if (rv != CKR_OK || !counted)
        return rv;
    // The must-change mark goes on the Key (set for a transport PIN, cleared
    // by an unlock), so that every account and machine enforces it.
    auto policy = key_policy(*r.backend, r.backend_slot, *r.key, true);
    if (!policy)
        log::error(policy.error().message);
    std::optional<KeyPolicy> next;
    bool marked = !transport; // the must-change mark is where it must be
    if (transport || (policy && *policy && (*policy)->user_must_change)) {
        PinCounts now = pins_.defaults();
        if (auto c = pins_.read(*r.key))
            now = *c;
        KeyPolicy p = policy && *policy ? **policy : KeyPolicy{now.user_max, now.so_max, false};
        p.user_must_change = transport;
        if (CK_RV w = write_key_policy(*r.backend, r.backend_slot, p); w == CKR_OK) {
            next = p;
            marked = true;
        } else if (w == CKR_FUNCTION_NOT_SUPPORTED) {
            // A token that keeps no objects: the mark can only be local.
            log::warning("Key " + key_name(*r.key) + " keeps no objects: its transport-PIN mark holds for this "
                         "account only");
            marked = true;
        } else {
            log::error("Key " + key_name(*r.key) + ": cannot write the PIN policy on the Key (" + rv_name(w) + ")");
        }
        forget_policy(*r.key);
    }
    auto done = pins_.update(
        *r.key,
        [&](PinCounts& c) {
            if (next)
                lay_key_policy(c, *next);
            c.user_left = c.user_max;
            c.user_must_change = transport;
            return true;
        },
        true);
    if (!done)
        log::error(done.error().message);
    // The PIN is set; what is lost is a transport PIN's must-change mark.
    if (transport && (!done || !marked))
        return CKR_FUNCTION_FAILED;
    return CKR_OK;
}

CK_RV PinPolicy::InitToken(const SlotEntry& e, CK_UTF8CHAR_PTR pPin, CK_ULONG ulPinLen, CK_UTF8CHAR_PTR pLabel)
{
    KeyId old_key;
    CK_TOKEN_INFO info;
    if (CK_RV rv = key_of(*e.backend, e.backend_slot, old_key, info); rv != CKR_OK)
        return rv;
    bool reserved = false;
    ForkGuard no_fork_meanwhile; // as in attempt()
    std::optional<PinStore::AttemptLock> lock;
    if (info.flags & CKF_TOKEN_INITIALIZED) {
        // Re-initialising checks the SO PIN: a wrong one costs an SO try like
        // any other, and with the SO PIN locked or the state damaged it is
        // refused (else it would be an unlimited SO PIN oracle that wipes the
        // Key on the right guess). Recovery: docs/pin-policy.md.
        auto l = pins_.lock_attempts(old_key);
        if (!l)
            return refuse(l.error());
        lock.emplace(std::move(*l));
        // The Key's SO limit applies if it can be read; a Key whose policy
        // object went missing is what re-initialising repairs.
        auto policy = key_policy(*e.backend, e.backend_slot, old_key, true);
        const std::optional<KeyPolicy>* limits = policy && *policy ? &*policy : nullptr;
        PinCounts after;
        if (CK_RV rv = reserve_try(old_key, PinUser::so, after, limits); rv != CKR_OK)
            return rv;
        reserved = true;
    }
    CK_RV rv = below().InitToken(e, pPin, ulPinLen, pLabel);
    if (reserved)
        settle_try(old_key, PinUser::so, verdict(rv));
    if (rv != CKR_OK)
        return rv;
    forget_policy(old_key); // the Key is wiped, its policy object with it
    KeyId key;
    if (key_of(*e.backend, e.backend_slot, key, info) == CKR_OK) {
        forget_policy(key);
        auto fresh = pins_.reset(key, pins_.defaults());
        if (!fresh)
            log::error(fresh.error().message);
    }
    lock.reset();
    return rv;
}

CK_RV PinPolicy::UkeyGetPinStatus(const SlotEntry& e, UKEY_PIN_STATUS* pStatus)
{
    KeyId key;
    CK_TOKEN_INFO info;
    if (CK_RV rv = key_of(*e.backend, e.backend_slot, key, info); rv != CKR_OK)
        return rv;
    if (!(info.flags & CKF_TOKEN_INITIALIZED))
        return CKR_TOKEN_NOT_RECOGNIZED;
    *pStatus = UKEY_PIN_STATUS{};
    pStatus->flags = UKEY_PIN_COUNTED_BY_UKEY;
    auto c = pin_counts(*e.backend, e.backend_slot, key, true);
    if (!c) {
        // Said (once per reason) so that tools can point at it.
        warn_once(c.error().message);
        pStatus->flags |= UKEY_PIN_STATE_DAMAGED;
        if (c.error().rv != CKR_PIN_LOCKED)
            pStatus->flags |= UKEY_PIN_STATE_UNAVAILABLE;
        return CKR_OK; // all counts 0: locked
    }
    pStatus->userTriesLeft = c->user_left;
    pStatus->userMaxTries = c->user_max;
    pStatus->soTriesLeft = c->so_left;
    pStatus->soMaxTries = c->so_max;
    if (c->user_must_change)
        pStatus->flags |= UKEY_PIN_USER_MUST_CHANGE;
    return CKR_OK;
}

CK_RV PinPolicy::UkeySetPinLimits(const SessionRoute& r, CK_ULONG userMaxTries, CK_ULONG soMaxTries)
{
    PinUser who;
    if (CK_RV rv = session_user(r, who); rv != CKR_OK)
        return rv;
    if (who != PinUser::so)
        return CKR_USER_NOT_LOGGED_IN;
    if (!r.key)
        return CKR_TOKEN_NOT_RECOGNIZED;
    // The limits go on the Key, so that every account and machine applies
    // them; the must-change mark it carries (or this account's) is kept.
    auto policy = key_policy(*r.backend, r.backend_slot, *r.key, true);
    if (!policy)
        return refuse(policy.error());
    auto local = pins_.read(*r.key);
    if (!local)
        return refuse(local.error());
    const KeyPolicy p{static_cast<unsigned>(userMaxTries), static_cast<unsigned>(soMaxTries),
                      *policy ? (*policy)->user_must_change : local->user_must_change};
    forget_policy(*r.key);
    const CK_RV w = write_key_policy(*r.backend, r.backend_slot, p);
    if (w == CKR_FUNCTION_NOT_SUPPORTED) {
        log::warning("Key " + key_name(*r.key) + " keeps no objects: its PIN limits hold for this account only");
    } else if (w != CKR_OK) {
        log::error("Key " + key_name(*r.key) + ": cannot write the PIN policy on the Key (" + rv_name(w) + ")");
        return w == CKR_PIN_LOCKED ? w : CKR_FUNCTION_FAILED;
    }
    auto done = pins_.update(
        *r.key,
        [&](PinCounts& c) {
            if (w == CKR_OK)
                lay_key_policy(c, p);
            c.user_max = p.user_max;
            c.so_max = p.so_max;
            c.user_left = c.user_max;
            c.so_left = c.so_max;
            return true;
        },
        true);
    if (!done)
        return refuse(done.error());
    return CKR_OK;
}

} // namespace ukey
