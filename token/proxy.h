// The Proxy: one per C_Initialize. It owns the backends, the slot list and
// the handle tables, and implements every PKCS#11 function by routing it to
// the right backend (p11/main.cpp is only the C boundary around it).
//
// Argument checks come first (CKR_ARGUMENTS_BAD), then handles
// (CKR_SLOT_ID_INVALID, CKR_SESSION_HANDLE_INVALID, CKR_*_HANDLE_INVALID),
// then the backend.
#pragma once

#include "token/backend.h"
#include "token/config.h"
#include "token/handles.h"
#include "token/key_policy.h"
#include "token/pin_store.h"
#include "token/slot_events.h"
#include "token/slot_table.h"

#include <ukey/vendor.h>

#include <atomic>
#include <memory>
#include <optional>
#include <set>
#include <utility>
#include <vector>

namespace ukey {

class Proxy {
public:
    static CK_RV Initialize(CK_VOID_PTR pInitArgs);
    static CK_RV Finalize(CK_VOID_PTR pReserved);
    // The initialised Proxy of this process, or nullptr (not initialised, or
    // a forked child that has not called C_Initialize itself).
    static Proxy* active()
    {
        Proxy* p = active_.load(std::memory_order_acquire);
        return p && p->fork_generation_ == current_fork_generation() ? p : nullptr;
    }
    // In a forked child: no thread is blocked in C_WaitForSlotEvent.
    static void forget_waiters() { waiting_.store(0); }

    ~Proxy();

    // General
    CK_RV GetInfo(CK_INFO_PTR pInfo);

    // Slots and tokens
    CK_RV GetSlotList(CK_BBOOL tokenPresent, CK_SLOT_ID_PTR pSlotList, CK_ULONG_PTR pulCount);
    CK_RV GetSlotInfo(CK_SLOT_ID slotID, CK_SLOT_INFO_PTR pInfo);
    CK_RV GetTokenInfo(CK_SLOT_ID slotID, CK_TOKEN_INFO_PTR pInfo);
    CK_RV GetMechanismList(CK_SLOT_ID slotID, CK_MECHANISM_TYPE_PTR pMechanismList, CK_ULONG_PTR pulCount);
    CK_RV GetMechanismInfo(CK_SLOT_ID slotID, CK_MECHANISM_TYPE type, CK_MECHANISM_INFO_PTR pInfo);
    CK_RV InitToken(CK_SLOT_ID slotID, CK_UTF8CHAR_PTR pPin, CK_ULONG ulPinLen, CK_UTF8CHAR_PTR pLabel);
    CK_RV InitPIN(CK_SESSION_HANDLE hSession, CK_UTF8CHAR_PTR pPin, CK_ULONG ulPinLen);
    CK_RV SetPIN(CK_SESSION_HANDLE hSession, CK_UTF8CHAR_PTR pOldPin, CK_ULONG ulOldLen, CK_UTF8CHAR_PTR pNewPin,
                 CK_ULONG ulNewLen);
    CK_RV WaitForSlotEvent(CK_FLAGS flags, CK_SLOT_ID_PTR pSlot, CK_VOID_PTR pReserved);

    // Sessions
    CK_RV OpenSession(CK_SLOT_ID slotID, CK_FLAGS flags, CK_VOID_PTR pApplication, CK_NOTIFY Notify,
                      CK_SESSION_HANDLE_PTR phSession);
    CK_RV CloseSession(CK_SESSION_HANDLE hSession);
    CK_RV CloseAllSessions(CK_SLOT_ID slotID);
    CK_RV GetSessionInfo(CK_SESSION_HANDLE hSession, CK_SESSION_INFO_PTR pInfo);
    CK_RV GetOperationState(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pOperationState, CK_ULONG_PTR pulOperationStateLen);
    CK_RV SetOperationState(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pOperationState, CK_ULONG ulOperationStateLen,
                            CK_OBJECT_HANDLE hEncryptionKey, CK_OBJECT_HANDLE hAuthenticationKey);
    CK_RV Login(CK_SESSION_HANDLE hSession, CK_USER_TYPE userType, CK_UTF8CHAR_PTR pPin, CK_ULONG ulPinLen);
    CK_RV Logout(CK_SESSION_HANDLE hSession);
    CK_RV GetFunctionStatus(CK_SESSION_HANDLE hSession);
    CK_RV CancelFunction(CK_SESSION_HANDLE hSession);

    // Objects
    CK_RV CreateObject(CK_SESSION_HANDLE hSession, CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount,
                       CK_OBJECT_HANDLE_PTR phObject);
    CK_RV CopyObject(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject, CK_ATTRIBUTE_PTR pTemplate,
                     CK_ULONG ulCount, CK_OBJECT_HANDLE_PTR phNewObject);
    CK_RV DestroyObject(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject);
    CK_RV GetObjectSize(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject, CK_ULONG_PTR pulSize);
    CK_RV GetAttributeValue(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject, CK_ATTRIBUTE_PTR pTemplate,
                            CK_ULONG ulCount);
    CK_RV SetAttributeValue(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject, CK_ATTRIBUTE_PTR pTemplate,
                            CK_ULONG ulCount);
    CK_RV FindObjectsInit(CK_SESSION_HANDLE hSession, CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount);
    CK_RV FindObjects(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE_PTR phObject, CK_ULONG ulMaxObjectCount,
                      CK_ULONG_PTR pulObjectCount);
    CK_RV FindObjectsFinal(CK_SESSION_HANDLE hSession);

    // Cryptographic operations: Init takes a mechanism and a key, the rest
    // only buffers.
    enum class Op { encrypt, decrypt, digest, sign, sign_recover, verify, verify_recover };
    CK_RV OperationInit(Op op, CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey);
    // C_Encrypt, C_Decrypt, C_Digest, C_Sign, C_SignRecover, C_VerifyRecover
    // and the four dual-function updates: data in, data out.
    template <class Fn>
    CK_RV InOut(Fn CK_FUNCTION_LIST::*fn, CK_SESSION_HANDLE hSession, CK_BYTE_PTR pIn, CK_ULONG ulInLen,
                CK_BYTE_PTR pOut, CK_ULONG_PTR pulOutLen)
    {
        if ((!pIn && ulInLen) || !pulOutLen)
            return CKR_ARGUMENTS_BAD;
        return forward(hSession, fn, pIn, ulInLen, pOut, pulOutLen);
    }
    // C_EncryptFinal, C_DecryptFinal, C_DigestFinal, C_SignFinal: data out.
    template <class Fn>
    CK_RV Out(Fn CK_FUNCTION_LIST::*fn, CK_SESSION_HANDLE hSession, CK_BYTE_PTR pOut, CK_ULONG_PTR pulOutLen)
    {
        if (!pulOutLen)
            return CKR_ARGUMENTS_BAD;
        return forward(hSession, fn, pOut, pulOutLen);
    }
    // C_DigestUpdate, C_SignUpdate, C_VerifyUpdate, C_VerifyFinal,
    // C_SeedRandom, C_GenerateRandom: one buffer.
    template <class Fn>
    CK_RV In(Fn CK_FUNCTION_LIST::*fn, CK_SESSION_HANDLE hSession, CK_BYTE_PTR pIn, CK_ULONG ulInLen)
    {
        if (!pIn && ulInLen)
            return CKR_ARGUMENTS_BAD;
        return forward(hSession, fn, pIn, ulInLen);
    }
    CK_RV Verify(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pData, CK_ULONG ulDataLen, CK_BYTE_PTR pSignature,
                 CK_ULONG ulSignatureLen);
    CK_RV DigestKey(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hKey);

    // ukey's vendor interface (include/ukey/vendor.h)
    CK_RV GetPinStatus(CK_SLOT_ID slotID, UKEY_PIN_STATUS* pStatus);
    CK_RV SetPinLimits(CK_SESSION_HANDLE hSession, CK_ULONG userMaxTries, CK_ULONG soMaxTries);
    CK_RV InitTransportPIN(CK_SESSION_HANDLE hSession, CK_UTF8CHAR_PTR pPin, CK_ULONG ulPinLen);
    CK_RV GetSlotBackend(CK_SLOT_ID slotID, UKEY_SLOT_BACKEND* pInfo);

    // Keys
    CK_RV GenerateKey(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_ATTRIBUTE_PTR pTemplate,
                      CK_ULONG ulCount, CK_OBJECT_HANDLE_PTR phKey);
    CK_RV GenerateKeyPair(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
                          CK_ATTRIBUTE_PTR pPublicKeyTemplate, CK_ULONG ulPublicKeyAttributeCount,
                          CK_ATTRIBUTE_PTR pPrivateKeyTemplate, CK_ULONG ulPrivateKeyAttributeCount,
                          CK_OBJECT_HANDLE_PTR phPublicKey, CK_OBJECT_HANDLE_PTR phPrivateKey);
    CK_RV WrapKey(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hWrappingKey,
                  CK_OBJECT_HANDLE hKey, CK_BYTE_PTR pWrappedKey, CK_ULONG_PTR pulWrappedKeyLen);
    CK_RV UnwrapKey(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hUnwrappingKey,
                    CK_BYTE_PTR pWrappedKey, CK_ULONG ulWrappedKeyLen, CK_ATTRIBUTE_PTR pTemplate,
                    CK_ULONG ulAttributeCount, CK_OBJECT_HANDLE_PTR phKey);
    CK_RV DeriveKey(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hBaseKey,
                    CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulAttributeCount, CK_OBJECT_HANDLE_PTR phKey);

private:
    Proxy(Config cfg, std::optional<MutexCallbacks> cb);

    static unsigned current_fork_generation();
    static std::atomic<Proxy*> active_;
    // Proxies a forked child inherited and must never touch again; kept
    // reachable so leak checkers do not count them.
    static Proxy* abandoned_;
    Proxy* next_abandoned_ = nullptr;
    // Threads inside WaitForSlotEvent, of any Proxy: C_Finalize waits for
    // them to leave before freeing what they use. Static, because a caller
    // may hold a pointer to a Proxy that C_Finalize is about to delete.
    static std::atomic<unsigned> waiting_;

    // Routes a session-only call to its backend.
    template <class Fn, class... Args>
    CK_RV forward(CK_SESSION_HANDLE hSession, Fn CK_FUNCTION_LIST::*fn, Args... args)
    {
        SessionRoute r;
        if (!sessions_.find(hSession, r))
            return CKR_SESSION_HANDLE_INVALID;
        return done(r, r.backend->call(fn, r.handle, args...));
    }
    // Resolves the session, then runs fn(route) and passes its answer
    // through done().
    template <class Fn>
    CK_RV on_session(CK_SESSION_HANDLE hSession, Fn&& fn)
    {
        SessionRoute r;
        if (!sessions_.find(hSession, r))
            return CKR_SESSION_HANDLE_INVALID;
        return done(r, fn(r));
    }
    // Resolves the session and one object handle (`invalid` is the code for
    // a bad one), then runs fn(route, backend_handle).
    template <class Fn>
    CK_RV on_object(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject, CK_RV invalid, Fn&& fn)
    {
        return on_session(hSession, [&](const SessionRoute& r) {
            CK_OBJECT_HANDLE h;
            if (CK_RV rv = object(r, hObject, h, invalid); rv != CKR_OK)
                return rv;
            return fn(r, h);
        });
    }
    // The backend's answer as the application should see it: "not logged
    // in" while logged in with a PIN that must be changed is
    // CKR_PIN_EXPIRED. Costs one compare on the success path.
    CK_RV done(const SessionRoute& r, CK_RV rv) const
    {
        if (rv == CKR_USER_NOT_LOGGED_IN && any_expired_.load(std::memory_order_relaxed) && pin_expired(r))
            return CKR_PIN_EXPIRED;
        return rv;
    }

    // PIN policy (proxy_pin.cpp)
    enum class PinUser { user, so };
    enum class Verdict { right, wrong, unjudged };
    bool counts_pins(const Backend& b) const { return b.pin_counter() == PinCounter::ukey && pins_; }
    CK_RV key_of(const Backend& b, CK_SLOT_ID backend_slot, KeyId& key, CK_TOKEN_INFO& info) const;
    // The policy the Key carries (key_policy.h): `fresh` reads the Key,
    // else the copy cached per Key is used when there is one.
    Result<std::optional<KeyPolicy>> key_policy(const Backend& b, CK_SLOT_ID backend_slot, const KeyId& key,
                                                bool fresh) const;
    void remember_policy(const KeyId& key, const std::optional<KeyPolicy>& p) const;
    void forget_policy(const KeyId& key) const;
    // Logs a warning unless this Proxy already logged the same one.
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
    void show_pin_state(const Backend& b, CK_SLOT_ID backend_slot, CK_TOKEN_INFO& info) const;
    bool pin_expired(const SessionRoute& r) const;
    void set_pin_expired(const SessionRoute& r, bool expired);
    void forget_login_if_last(const SessionRoute& r);
    CK_RV session_user(const SessionRoute& r, PinUser& who) const;
    CK_RV check_transport_pin(const SessionRoute& r, CK_UTF8CHAR_PTR pin, CK_ULONG len);
    CK_RV set_user_pin(CK_SESSION_HANDLE hSession, CK_UTF8CHAR_PTR pPin, CK_ULONG ulPinLen, bool transport);
    // The slot for an application slot ID, refreshing the list once if the
    // ID is unknown. CKR_SLOT_ID_INVALID, or CKR_TOKEN_NOT_PRESENT for a Key
    // that is out when need_token.
    CK_RV slot(CK_SLOT_ID id, bool need_token, SlotEntry& out);
    CK_RV object(const SessionRoute& r, CK_OBJECT_HANDLE app, CK_OBJECT_HANDLE& out, CK_RV invalid) const;
    // A backend's CKR_OBJECT_HANDLE_INVALID for a key argument is
    // CKR_KEY_HANDLE_INVALID in the spec (SoftHSM2 gets this wrong).
    static CK_RV key_rv(CK_RV rv, CK_RV invalid = CKR_KEY_HANDLE_INVALID)
    {
        return rv == CKR_OBJECT_HANDLE_INVALID ? invalid : rv;
    }

    std::optional<MutexCallbacks> callbacks_; // set when the application's mutexes must be used
    Config config_;
    std::vector<std::unique_ptr<Backend>> backends_;
    SlotTable slots_;
    SessionTable sessions_;
    ObjectHandles objects_;
    unsigned fork_generation_ = 0;

    // Object-handle tags: a number per (backend, backend slot) seen.
    unsigned route_tag(const Backend& b, CK_SLOT_ID backend_slot);
    // One KeyId object per Key for the Proxy's life, so a session route can
    // point at its Key for the cost of a pointer.
    const KeyId* intern(const KeyId& key);
    // The Key in a backend slot, read now (nullptr: uninitialised token).
    CK_RV bind_key(const SlotEntry& e, const KeyId*& out);

    RwLock tags_lock_;
    std::map<std::pair<unsigned, CK_SLOT_ID>, unsigned> tags_;
    std::vector<unsigned> next_slot_number_ = std::vector<unsigned>(16, 1);
    RwLock keys_lock_;
    std::map<std::string, std::unique_ptr<KeyId>> keys_;

    std::unique_ptr<PinStore> pins_;
    mutable RwLock policies_lock_;
    mutable std::map<std::string, std::optional<KeyPolicy>> policies_; // by Key identity
    mutable std::set<std::string> warned_; // warn_once(), under policies_lock_
    mutable RwLock expired_lock_;
    std::set<std::pair<const Backend*, CK_SLOT_ID>> expired_; // logged in with a PIN to be changed
    std::atomic<bool> any_expired_{false};

    std::atomic<bool> slot_list_cached_{false}; // C_GetSlotList(NULL) ran; the next fill reuses it
    SlotEvents events_; // C_WaitForSlotEvent
};

} // namespace ukey
