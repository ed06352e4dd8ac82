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
#include "token/slot_events.h"
#include "token/slot_table.h"
#include "token/stack.h"

#include <ukey/vendor.h>

#include <atomic>
#include <memory>
#include <optional>
#include <set>
#include <utility>
#include <mutex>
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

    // Every function the application calls, as it calls it (token/functions.h).
#define UKEY_METHOD_call(name, params) CK_RV name params;
#define UKEY_METHOD_block(name, params) CK_RV name params;
#define UKEY_METHOD_own(name, params)
#define UKEY_X(stub, route, name, params, args) UKEY_METHOD_##stub(name, UKEY_APP_PARAMS(route, params))
    UKEY_ALL_FUNCTIONS(UKEY_X)
#undef UKEY_X

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

    // The stack of layers of a backend (token/stack.h).
    const Stack& stack(const Backend* b) const { return stacks_[b->index()]->top(); }
    // Routes a session-only call down its backend's stack.
    template <class E, class... Args>
    CK_RV forward(CK_SESSION_HANDLE hSession, E Stack::*fn, Args... args)
    {
        SessionRoute r;
        if (!sessions_.find(hSession, r))
            return CKR_SESSION_HANDLE_INVALID;
        return (stack(r.backend).*fn)(r, args...);
    }
    // Routes a slot call down its backend's stack; need_token: a Key that
    // is out answers CKR_TOKEN_NOT_PRESENT.
    template <class E, class... Args>
    CK_RV slot_forward(CK_SLOT_ID slotID, bool need_token, E Stack::*fn, Args... args)
    {
        return on_slot(slotID, need_token, [&](const SlotEntry& e) { return (stack(e.backend).*fn)(e, args...); });
    }
    // Resolves the slot (need_token as in slot_forward), then runs fn(slot).
    template <class Fn>
    CK_RV on_slot(CK_SLOT_ID slotID, bool need_token, Fn&& fn)
    {
        SlotEntry e;
        if (CK_RV rv = slot(slotID, need_token, e); rv != CKR_OK)
            return rv;
        return fn(e);
    }
    // Resolves the session, then runs fn(route).
    template <class Fn>
    CK_RV on_session(CK_SESSION_HANDLE hSession, Fn&& fn)
    {
        SessionRoute r;
        if (!sessions_.find(hSession, r))
            return CKR_SESSION_HANDLE_INVALID;
        return fn(r);
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
    // Routes a call on one object (a key when invalid is
    // CKR_KEY_HANDLE_INVALID) down its backend's stack.
    template <class E, class... Args>
    CK_RV object_forward(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject, CK_RV invalid, E Stack::*fn,
                         Args... args)
    {
        return on_object(hSession, hObject, invalid, [&](const SessionRoute& r, CK_OBJECT_HANDLE h) {
            return (stack(r.backend).*fn)(r, h, args...);
        });
    }
    // The shapes of the data functions: data in and out (C_Encrypt, C_Sign,
    // the dual-function updates, ...), data out (C_*Final), one buffer in.
    template <class E>
    CK_RV data_in_out(E Stack::*fn, CK_SESSION_HANDLE hSession, CK_BYTE_PTR pIn, CK_ULONG ulInLen, CK_BYTE_PTR pOut,
                 CK_ULONG_PTR pulOutLen)
    {
        if ((!pIn && ulInLen) || !pulOutLen)
            return CKR_ARGUMENTS_BAD;
        return forward(hSession, fn, pIn, ulInLen, pOut, pulOutLen);
    }
    template <class E>
    CK_RV data_out(E Stack::*fn, CK_SESSION_HANDLE hSession, CK_BYTE_PTR pOut, CK_ULONG_PTR pulOutLen)
    {
        if (!pulOutLen)
            return CKR_ARGUMENTS_BAD;
        return forward(hSession, fn, pOut, pulOutLen);
    }
    template <class E>
    CK_RV data_in(E Stack::*fn, CK_SESSION_HANDLE hSession, CK_BYTE_PTR pIn, CK_ULONG ulInLen)
    {
        if (!pIn && ulInLen)
            return CKR_ARGUMENTS_BAD;
        return forward(hSession, fn, pIn, ulInLen);
    }
    // Resolves the session and one key (`invalid` as in on_object) and
    // translates the handles in the mechanism's parameter, then runs
    // fn(route, backend_mechanism, backend_key).
    template <class Fn>
    CK_RV on_keyed(CK_SESSION_HANDLE hSession, const CK_MECHANISM& mechanism, CK_OBJECT_HANDLE hKey, CK_RV invalid,
                   Fn&& fn);
    // C_*Init with a mechanism and a key.
    template <class E>
    CK_RV operation_init(E Stack::*fn, CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey);

    // The slot for an application slot ID, refreshing the list once if the
    // ID is unknown. CKR_SLOT_ID_INVALID, or CKR_TOKEN_NOT_PRESENT for a Key
    // that is out when need_token.
    CK_RV slot(CK_SLOT_ID id, bool need_token, SlotEntry& out);
    CK_RV object(const SessionRoute& r, CK_OBJECT_HANDLE app, CK_OBJECT_HANDLE& out, CK_RV invalid) const;
    std::optional<MutexCallbacks> callbacks_; // set when the application's mutexes must be used
    Config config_;
    std::vector<std::unique_ptr<Backend>> backends_;
    SlotTable slots_;
    SessionTable sessions_;
    ObjectHandles objects_;
    unsigned fork_generation_ = 0;
    CK_FLAGS init_flags_ = 0; // the application's C_Initialize flags, for a backend initialised again
    bool serving_ = false;    // in ukeyd's serving child (peer_access.h)

    // A backend that shows another process's new Key only once initialised
    // again (SoftHSM2): C_Finalize and C_Initialize of it, with every backend
    // call paused, when this process has no session on it.
    SlotSource::Reload reload_backend(const std::string& name, bool first);
    // ukeyd says the Key of this ID is out, its backend still shows it: its
    // sessions are closed and the slot list shows it out (SlotTable::mark_gone).
    void key_gone(CK_SLOT_ID id);
    // Refreshes the slot list; the sessions on Keys that went out end.
    void refresh_slots();
    // The application's sessions on a Key that went away end
    // (CKR_SESSION_HANDLE_INVALID from then on).
    void end_sessions(const SlotEntry& e);

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

    std::vector<std::unique_ptr<BackendStack>> stacks_; // by Backend::index()

    // Notify relays of sessions ended because their Key went away
    // (end_sessions): the backend's sessions stay open and may still call.
    std::mutex orphan_relays_lock_;
    std::vector<std::unique_ptr<NotifyRelay>> orphan_relays_;

    std::atomic<bool> slot_list_cached_{false}; // C_GetSlotList(NULL) ran; the next fill reuses it
    SlotEvents events_; // C_WaitForSlotEvent
};

} // namespace ukey
