// Sessions (login and PINs: proxy_pin.cpp).
#include "token/proxy.h"

namespace ukey {

unsigned Proxy::route_tag(const Backend& b, CK_SLOT_ID backend_slot)
{
    std::unique_lock<RwLock> g(tags_lock_);
    auto [it, fresh] = tags_.try_emplace({b.index(), backend_slot}, 0);
    if (fresh) {
        // Slot number 0 means "not told apart": a backend with more than 255
        // slots in one module lifetime shares it for the rest.
        unsigned& next = next_slot_number_[b.index()];
        it->second = next < (1u << ObjectHandles::slot_bits) ? next++ : 0;
    }
    return ObjectHandles::tag(b.index(), it->second);
}

const KeyId* Proxy::intern(const KeyId& key)
{
    std::unique_lock<RwLock> g(keys_lock_);
    auto& slot = keys_[key.identity()];
    if (!slot)
        slot = std::make_unique<KeyId>(key);
    return slot.get();
}

CK_RV Proxy::bind_key(const SlotEntry& e, const KeyId*& out)
{
    out = nullptr;
    if (e.names_key && e.present) {
        out = intern(e.key);
        return CKR_OK;
    }
    CK_TOKEN_INFO info;
    if (CK_RV rv = read_token_info(*e.backend, e.backend_slot, info); rv != CKR_OK)
        return rv;
    if (info.flags & CKF_TOKEN_INITIALIZED)
        out = intern(key_id(e.backend->name(), info));
    return CKR_OK;
}

namespace {
// The backend calls this with its own session handle; the application gets
// its own handle and pApplication back.
CK_RV relay_notify(CK_SESSION_HANDLE, CK_NOTIFICATION event, CK_VOID_PTR p)
{
    auto* r = static_cast<NotifyRelay*>(p);
    return r->notify(r->app_handle, event, r->application);
}
} // namespace

CK_RV Proxy::OpenSession(CK_SLOT_ID slotID, CK_FLAGS flags, CK_VOID_PTR pApplication, CK_NOTIFY Notify,
                         CK_SESSION_HANDLE_PTR phSession)
{
    if (!phSession)
        return CKR_ARGUMENTS_BAD;
    if (!(flags & CKF_SERIAL_SESSION))
        return CKR_SESSION_PARALLEL_NOT_SUPPORTED;
    SlotEntry e;
    if (CK_RV rv = slot(slotID, true, e); rv != CKR_OK)
        return rv;
    const KeyId* key = nullptr;
    if (CK_RV rv = bind_key(e, key); rv != CKR_OK)
        return rv;
    const CK_SESSION_HANDLE mine = sessions_.reserve();
    std::unique_ptr<NotifyRelay> relay;
    if (Notify)
        relay.reset(new NotifyRelay{mine, Notify, pApplication});
    CK_SESSION_HANDLE theirs = CK_INVALID_HANDLE;
    CK_RV rv = stack(e.backend).OpenSession(e, flags, relay ? static_cast<CK_VOID_PTR>(relay.get()) : pApplication,
                                            relay ? &relay_notify : CK_NOTIFY(nullptr), &theirs);
    if (rv != CKR_OK)
        return rv;
    sessions_.insert(mine,
                     SessionRoute{e.backend, theirs, slotID, e.backend_slot, route_tag(*e.backend, e.backend_slot), key},
                     std::move(relay));
    *phSession = mine;
    return CKR_OK;
}

CK_RV Proxy::CloseSession(CK_SESSION_HANDLE hSession)
{
    SessionRoute r;
    if (!sessions_.find(hSession, r))
        return CKR_SESSION_HANDLE_INVALID;
    CK_RV rv = stack(r.backend).CloseSession(r);
    // A session the backend already dropped (Key pulled out, or closed by
    // C_CloseAllSessions meanwhile) is closed all the same.
    if (rv == CKR_SESSION_HANDLE_INVALID || rv == CKR_SESSION_CLOSED)
        rv = CKR_OK;
    if (rv == CKR_OK || rv == CKR_DEVICE_REMOVED || rv == CKR_TOKEN_NOT_PRESENT)
        sessions_.erase(hSession);
    return rv;
}

CK_RV Proxy::CloseAllSessions(CK_SLOT_ID slotID)
{
    return on_slot(slotID, false, [&](const SlotEntry& e) {
        // A Key that is out: the bottom of the stack answers for it.
        CK_RV rv = stack(e.backend).CloseAllSessions(e);
        if (rv == CKR_OK || rv == CKR_DEVICE_REMOVED || rv == CKR_TOKEN_NOT_PRESENT)
            sessions_.erase_slot(e.backend, e.backend_slot);
        return rv == CKR_TOKEN_NOT_PRESENT ? CKR_OK : rv;
    });
}

CK_RV Proxy::GetSessionInfo(CK_SESSION_HANDLE hSession, CK_SESSION_INFO_PTR pInfo)
{
    if (!pInfo)
        return CKR_ARGUMENTS_BAD;
    SessionRoute r;
    if (!sessions_.find(hSession, r))
        return CKR_SESSION_HANDLE_INVALID;
    CK_RV rv = stack(r.backend).GetSessionInfo(r, pInfo);
    if (rv == CKR_OK)
        pInfo->slotID = r.slot;
    return rv;
}

CK_RV Proxy::GetOperationState(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pOperationState,
                               CK_ULONG_PTR pulOperationStateLen)
{
    if (!pulOperationStateLen)
        return CKR_ARGUMENTS_BAD;
    return forward(hSession, &Stack::GetOperationState, pOperationState, pulOperationStateLen);
}

CK_RV Proxy::SetOperationState(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pOperationState,
                               CK_ULONG ulOperationStateLen, CK_OBJECT_HANDLE hEncryptionKey,
                               CK_OBJECT_HANDLE hAuthenticationKey)
{
    if (!pOperationState && ulOperationStateLen)
        return CKR_ARGUMENTS_BAD;
    return on_session(hSession, [&](const SessionRoute& r) {
        CK_OBJECT_HANDLE enc = CK_INVALID_HANDLE, auth = CK_INVALID_HANDLE;
        if (hEncryptionKey != CK_INVALID_HANDLE)
            if (CK_RV rv = object(r, hEncryptionKey, enc, CKR_KEY_HANDLE_INVALID); rv != CKR_OK)
                return rv;
        if (hAuthenticationKey != CK_INVALID_HANDLE)
            if (CK_RV rv = object(r, hAuthenticationKey, auth, CKR_KEY_HANDLE_INVALID); rv != CKR_OK)
                return rv;
        return stack(r.backend).SetOperationState(r, pOperationState, ulOperationStateLen, enc, auth);
    });
}

// Parallel functions are legacy (v2.40 §5.16): a valid session gets the
// spec's fixed answer without bothering the backend.
CK_RV Proxy::GetFunctionStatus(CK_SESSION_HANDLE hSession)
{
    SessionRoute r;
    return sessions_.find(hSession, r) ? CKR_FUNCTION_NOT_PARALLEL : CKR_SESSION_HANDLE_INVALID;
}

CK_RV Proxy::CancelFunction(CK_SESSION_HANDLE hSession)
{
    return GetFunctionStatus(hSession);
}

} // namespace ukey
