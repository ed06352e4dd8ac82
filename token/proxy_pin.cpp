// PIN policy at the PKCS#11 boundary: try counting and lockout, SO unlock,
// transport PINs that must be changed, PIN quality (docs/pin-policy.md).
//
// A try is taken from the durable counter (fsync'd) before a PIN reaches
// the token and given back only after the token's answer: killing the
// process in between never yields a free try.
#include "token/proxy.h"

#include "token/key_policy.h"
#include "token/log.h"
#include "token/pin_rules.h"
#include "token/slot_id.h"
#include "token/slot_table.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <optional>
#include <shared_mutex>

namespace ukey {

namespace {
// No token takes PINs this long; a larger length is a caller's bug that must
// not make a backend read past the buffer.
constexpr CK_ULONG max_pin_len = 1024;

bool bad_pin(CK_UTF8CHAR_PTR pin, CK_ULONG len)
{
    return !pin && len;
}

// The argument checks of a function taking one PIN.
CK_RV pin_args(CK_UTF8CHAR_PTR pin, CK_ULONG len)
{
    if (bad_pin(pin, len))
        return CKR_ARGUMENTS_BAD;
    return len > max_pin_len ? CKR_PIN_LEN_RANGE : CKR_OK;
}
} // namespace

CK_RV Proxy::key_of(const Backend& b, CK_SLOT_ID backend_slot, KeyId& key, CK_TOKEN_INFO& info) const
{
    CK_RV rv = read_token_info(b, backend_slot, info);
    if (rv != CKR_OK)
        return rv;
    key = key_id(b.name(), info);
    return CKR_OK;
}

namespace {
std::string rv_name(CK_RV rv)
{
    char buf[32];
    std::snprintf(buf, sizeof buf, "CK_RV 0x%lx", static_cast<unsigned long>(rv));
    return buf;
}

// A state that cannot be used refuses the PIN: locked if the state is
// damaged, else "failed" (no state folder, an attempt that is stuck), with
// the reason in the log.
CK_RV refuse(const Error& e)
{
    log::error(e.message);
    return e.rv == CKR_PIN_LOCKED ? CKR_PIN_LOCKED : CKR_FUNCTION_FAILED;
}
} // namespace

CK_RV Proxy::reserve_try(const KeyId& key, PinUser who, PinCounts& after, const std::optional<KeyPolicy>* policy)
{
    bool locked = false;
    std::optional<Error> untrusted;
    auto r = pins_->update(
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

void Proxy::settle_try(const KeyId& key, PinUser who, Verdict v)
{
    if (v == Verdict::wrong)
        return; // the try stays taken
    // No fsync: losing this write only costs the user a try, never gains one.
    auto r = pins_->update(
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

Proxy::Verdict Proxy::verdict(CK_RV rv)
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

// One PIN attempt on a Key: the attempt lock, a try taken before the PIN
// goes to the token, the token's answer, the try settled.
// One PIN attempt on a Key: its policy read, the attempt lock, a try taken
// before the PIN goes to the token, the token's answer, the try settled.
template <class Ask>
CK_RV Proxy::attempt(const SessionRoute& r, PinUser who, PinCounts& counts, Ask&& ask_token)
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
    auto lock = pins_->lock_attempts(*r.key);
    if (!lock)
        return refuse(lock.error());
    if (CK_RV rv = reserve_try(*r.key, who, counts, &*policy); rv != CKR_OK)
        return rv;
    CK_RV rv = ask_token();
    settle_try(*r.key, who, verdict(rv));
    return rv;
}

void Proxy::show_pin_state(const Backend& b, CK_SLOT_ID backend_slot, CK_TOKEN_INFO& info) const
{
    if (!counts_pins(b) || !(info.flags & CKF_TOKEN_INITIALIZED))
        return;
    apply_pin_flags(info, pin_counts(b, backend_slot, key_id(b.name(), info), false));
}

bool Proxy::pin_expired(const SessionRoute& r) const
{
    if (!any_expired_.load(std::memory_order_relaxed))
        return false;
    std::shared_lock<RwLock> g(expired_lock_);
    return expired_.count({r.backend, r.backend_slot}) > 0;
}

void Proxy::set_pin_expired(const SessionRoute& r, bool expired)
{
    std::unique_lock<RwLock> g(expired_lock_);
    if (expired)
        expired_.insert({r.backend, r.backend_slot});
    else
        expired_.erase({r.backend, r.backend_slot});
    any_expired_ = !expired_.empty();
}

void Proxy::forget_login_if_last(const SessionRoute& r)
{
    // Closing an application's last session with a token logs it out.
    if (!pin_expired(r))
        return;
    bool others = false;
    sessions_.for_each([&](CK_SESSION_HANDLE, const SessionRoute& s) {
        others = others || (s.backend == r.backend && s.backend_slot == r.backend_slot);
    });
    if (!others)
        set_pin_expired(r, false);
}

CK_RV Proxy::session_user(const SessionRoute& r, PinUser& who) const
{
    CK_SESSION_INFO si;
    CK_RV rv = r.backend->call(&CK_FUNCTION_LIST::C_GetSessionInfo, r.handle, &si);
    if (rv != CKR_OK)
        return rv;
    who = si.state == CKS_RW_SO_FUNCTIONS ? PinUser::so : PinUser::user;
    return CKR_OK;
}

CK_RV Proxy::Login(CK_SESSION_HANDLE hSession, CK_USER_TYPE userType, CK_UTF8CHAR_PTR pPin, CK_ULONG ulPinLen)
{
    if (CK_RV rv = pin_args(pPin, ulPinLen); rv != CKR_OK)
        return rv;
    SessionRoute r;
    if (!sessions_.find(hSession, r))
        return CKR_SESSION_HANDLE_INVALID;
    const bool known_type = userType == CKU_USER || userType == CKU_SO || userType == CKU_CONTEXT_SPECIFIC;
    if (!counts_pins(*r.backend) || !r.key)
        return r.backend->call(&CK_FUNCTION_LIST::C_Login, r.handle, userType, pPin, ulPinLen);
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
        return r.backend->call(&CK_FUNCTION_LIST::C_Login, r.handle, userType, pPin, ulPinLen);
    });
    // Only C_SetPIN may follow: calls that need a login answer
    // CKR_PIN_EXPIRED until the PIN is changed.
    if (rv == CKR_OK && held_back())
        set_pin_expired(r, true);
    return rv;
}

CK_RV Proxy::check_transport_pin(const SessionRoute& r, CK_UTF8CHAR_PTR pin, CK_ULONG len)
{
    // A PIN that must be changed is checked without logging the token in:
    // a login, even one undone at once, is the whole application's, and
    // its other sessions (threads) could use it meanwhile. C_SetPIN of the
    // PIN to itself, in a public R/W session of ukey's own, checks it and
    // changes nothing.
    CK_SESSION_HANDLE own = CK_INVALID_HANDLE;
    CK_RV rv = r.backend->call(&CK_FUNCTION_LIST::C_OpenSession, r.backend_slot, CK_FLAGS(CKF_SERIAL_SESSION | CKF_RW_SESSION),
                               CK_VOID_PTR(nullptr), CK_NOTIFY(nullptr), &own);
    if (rv == CKR_SESSION_READ_WRITE_SO_EXISTS)
        return CKR_USER_ANOTHER_ALREADY_LOGGED_IN;
    if (rv != CKR_OK)
        return rv;
    CK_SESSION_INFO si{};
    rv = r.backend->call(&CK_FUNCTION_LIST::C_GetSessionInfo, own, &si);
    // Logged in already (another session): what C_Login would answer.
    if (rv == CKR_OK && si.state != CKS_RW_PUBLIC_SESSION)
        rv = si.state == CKS_RW_SO_FUNCTIONS ? CKR_USER_ANOTHER_ALREADY_LOGGED_IN : CKR_USER_ALREADY_LOGGED_IN;
    else if (rv == CKR_OK)
        rv = r.backend->call(&CK_FUNCTION_LIST::C_SetPIN, own, pin, len, pin, len);
    r.backend->call(&CK_FUNCTION_LIST::C_CloseSession, own);
    return rv;
}

CK_RV Proxy::Logout(CK_SESSION_HANDLE hSession)
{
    SessionRoute r;
    if (!sessions_.find(hSession, r))
        return CKR_SESSION_HANDLE_INVALID;
    if (pin_expired(r)) {
        set_pin_expired(r, false);
        return CKR_OK; // the token itself was never left logged in
    }
    return r.backend->call(&CK_FUNCTION_LIST::C_Logout, r.handle);
}

CK_RV Proxy::SetPIN(CK_SESSION_HANDLE hSession, CK_UTF8CHAR_PTR pOldPin, CK_ULONG ulOldLen, CK_UTF8CHAR_PTR pNewPin,
                    CK_ULONG ulNewLen)
{
    if (bad_pin(pOldPin, ulOldLen) || bad_pin(pNewPin, ulNewLen))
        return CKR_ARGUMENTS_BAD;
    if (ulOldLen > max_pin_len || ulNewLen > max_pin_len)
        return CKR_PIN_LEN_RANGE;
    SessionRoute r;
    if (!sessions_.find(hSession, r))
        return CKR_SESSION_HANDLE_INVALID;
    CK_TOKEN_INFO info;
    if (CK_RV rv = r.backend->call(&CK_FUNCTION_LIST::C_GetTokenInfo, r.backend_slot, &info); rv != CKR_OK)
        return rv;
    if (CK_RV rv = check_new_pin(pNewPin, ulNewLen, info, config_.pin_rules, pOldPin, ulOldLen); rv != CKR_OK)
        return rv;
    if (!counts_pins(*r.backend) || !r.key)
        return r.backend->call(&CK_FUNCTION_LIST::C_SetPIN, r.handle, pOldPin, ulOldLen, pNewPin, ulNewLen);

    PinUser who;
    if (CK_RV rv = session_user(r, who); rv != CKR_OK)
        return rv;
    PinCounts counts;
    CK_RV rv = attempt(r, who, counts, [&] {
        return r.backend->call(&CK_FUNCTION_LIST::C_SetPIN, r.handle, pOldPin, ulOldLen, pNewPin, ulNewLen);
    });
    if (rv == CKR_OK && who == PinUser::user && counts.user_must_change) {
        if (pin_expired(r)) {
            // The login that was held back can now take effect.
            r.backend->call(&CK_FUNCTION_LIST::C_Login, r.handle, CK_USER_TYPE(CKU_USER), pNewPin, ulNewLen);
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
        auto done = pins_->update(*r.key, [](PinCounts& c) { c.user_must_change = false; return true; }, true);
        if (!done)
            log::error(done.error().message);
    }
    return rv;
}

CK_RV Proxy::InitPIN(CK_SESSION_HANDLE hSession, CK_UTF8CHAR_PTR pPin, CK_ULONG ulPinLen)
{
    return set_user_pin(hSession, pPin, ulPinLen, false);
}

CK_RV Proxy::InitTransportPIN(CK_SESSION_HANDLE hSession, CK_UTF8CHAR_PTR pPin, CK_ULONG ulPinLen)
{
    return set_user_pin(hSession, pPin, ulPinLen, true);
}

// C_InitPIN in an SO session: the unlock. A new user PIN, the full count, no
// lock; a transport PIN (the issuer's default, often 1111 or 123456, trivial
// on purpose: only the token's length limits apply) must then be changed.
CK_RV Proxy::set_user_pin(CK_SESSION_HANDLE hSession, CK_UTF8CHAR_PTR pPin, CK_ULONG ulPinLen, bool transport)
{
    if (CK_RV rv = pin_args(pPin, ulPinLen); rv != CKR_OK)
        return rv;
    SessionRoute r;
    if (!sessions_.find(hSession, r))
        return CKR_SESSION_HANDLE_INVALID;
    const bool counted = counts_pins(*r.backend) && r.key;
    if (transport && !counts_pins(*r.backend))
        return CKR_FUNCTION_NOT_SUPPORTED;
    if (transport && !r.key)
        return CKR_TOKEN_NOT_RECOGNIZED;
    CK_TOKEN_INFO info;
    if (CK_RV rv = r.backend->call(&CK_FUNCTION_LIST::C_GetTokenInfo, r.backend_slot, &info); rv != CKR_OK)
        return rv;
    if (CK_RV rv = check_new_pin(pPin, ulPinLen, info, transport ? PinRules{false, 0} : config_.pin_rules);
        rv != CKR_OK)
        return rv;
    CK_RV rv = r.backend->call(&CK_FUNCTION_LIST::C_InitPIN, r.handle, pPin, ulPinLen);
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
        PinCounts now = pins_->defaults();
        if (auto c = pins_->read(*r.key))
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
    auto done = pins_->update(
        *r.key,
        [&](PinCounts& c) {
            if (next)
                apply_key_policy(c, next, key_name(*r.key));
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

CK_RV Proxy::InitToken(CK_SLOT_ID slotID, CK_UTF8CHAR_PTR pPin, CK_ULONG ulPinLen, CK_UTF8CHAR_PTR pLabel)
{
    if (!pLabel)
        return CKR_ARGUMENTS_BAD;
    if (CK_RV rv = pin_args(pPin, ulPinLen); rv != CKR_OK)
        return rv;
    SlotEntry e;
    if (CK_RV rv = slot(slotID, true, e); rv != CKR_OK)
        return rv;
    KeyId old_key;
    CK_TOKEN_INFO info;
    if (CK_RV rv = key_of(*e.backend, e.backend_slot, old_key, info); rv != CKR_OK)
        return rv;
    const bool counted = counts_pins(*e.backend);
    bool reserved = false;
    ForkGuard no_fork_meanwhile; // as in attempt()
    std::optional<PinStore::AttemptLock> lock;
    if (!(info.flags & CKF_TOKEN_INITIALIZED)) {
        if (CK_RV rv = check_new_pin(pPin, ulPinLen, info, config_.pin_rules); rv != CKR_OK)
            return rv;
    } else if (counted) {
        // Re-initialising checks the SO PIN: a wrong one costs an SO try like
        // any other, and with the SO PIN locked or the state damaged it is
        // refused (else it would be an unlimited SO PIN oracle that wipes the
        // Key on the right guess). Recovery: docs/pin-policy.md.
        auto l = pins_->lock_attempts(old_key);
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
    CK_RV rv = e.backend->call(&CK_FUNCTION_LIST::C_InitToken, e.backend_slot, pPin, ulPinLen, pLabel);
    if (reserved)
        settle_try(old_key, PinUser::so, verdict(rv));
    if (rv != CKR_OK)
        return rv;
    forget_policy(old_key); // the Key is wiped, its policy object with it
    slots_.refresh(backends_); // the token may have a new identity now
    KeyId key;
    if (counted && key_of(*e.backend, e.backend_slot, key, info) == CKR_OK) {
        forget_policy(key);
        auto fresh = pins_->reset(key, pins_->defaults());
        if (!fresh)
            log::error(fresh.error().message);
    }
    lock.reset();
    return rv;
}

CK_RV Proxy::GetPinStatus(CK_SLOT_ID slotID, UKEY_PIN_STATUS* pStatus)
{
    if (!pStatus)
        return CKR_ARGUMENTS_BAD;
    SlotEntry e;
    if (CK_RV rv = slot(slotID, true, e); rv != CKR_OK)
        return rv;
    KeyId key;
    CK_TOKEN_INFO info;
    if (CK_RV rv = key_of(*e.backend, e.backend_slot, key, info); rv != CKR_OK)
        return rv;
    if (!(info.flags & CKF_TOKEN_INITIALIZED))
        return CKR_TOKEN_NOT_RECOGNIZED;
    *pStatus = UKEY_PIN_STATUS{};
    if (!counts_pins(*e.backend)) {
        auto known = [](CK_FLAGS f, CK_FLAGS locked, CK_FLAGS final_try) -> CK_ULONG {
            return (f & locked) ? 0 : (f & final_try) ? 1 : CK_UNAVAILABLE_INFORMATION;
        };
        pStatus->userTriesLeft = known(info.flags, CKF_USER_PIN_LOCKED, CKF_USER_PIN_FINAL_TRY);
        pStatus->soTriesLeft = known(info.flags, CKF_SO_PIN_LOCKED, CKF_SO_PIN_FINAL_TRY);
        pStatus->userMaxTries = pStatus->soMaxTries = CK_UNAVAILABLE_INFORMATION;
        pStatus->flags = (info.flags & CKF_USER_PIN_TO_BE_CHANGED) ? UKEY_PIN_USER_MUST_CHANGE : 0;
        return CKR_OK;
    }
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

CK_RV Proxy::SetPinLimits(CK_SESSION_HANDLE hSession, CK_ULONG userMaxTries, CK_ULONG soMaxTries)
{
    if (userMaxTries < min_tries || userMaxTries > max_tries || soMaxTries < min_tries || soMaxTries > max_tries)
        return CKR_ARGUMENTS_BAD;
    SessionRoute r;
    if (!sessions_.find(hSession, r))
        return CKR_SESSION_HANDLE_INVALID;
    if (!counts_pins(*r.backend))
        return CKR_FUNCTION_NOT_SUPPORTED;
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
    auto local = pins_->read(*r.key);
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
    auto done = pins_->update(
        *r.key,
        [&](PinCounts& c) {
            if (w == CKR_OK)
                apply_key_policy(c, p, key_name(*r.key));
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
