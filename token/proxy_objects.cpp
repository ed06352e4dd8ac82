// Objects: create, copy, destroy, attributes, search.
//
// The Key's PIN policy object (key_policy.h) is ukey's: applications do not
// find it, and cannot make, change, copy or destroy it.
#include "token/proxy.h"

#include "token/key_policy.h"

#include <algorithm>

namespace ukey {

CK_RV Proxy::object(const SessionRoute& r, CK_OBJECT_HANDLE app, CK_OBJECT_HANDLE& out, CK_RV invalid) const
{
    auto h = objects_.to_backend(r.tag, app);
    if (!h)
        return invalid;
    out = *h;
    return CKR_OK;
}

CK_RV Proxy::CreateObject(CK_SESSION_HANDLE hSession, CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount,
                          CK_OBJECT_HANDLE_PTR phObject)
{
    if (!phObject || (!pTemplate && ulCount))
        return CKR_ARGUMENTS_BAD;
    return on_session(hSession, [&](const SessionRoute& r) {
        if (names_key_policy(pTemplate, ulCount))
            return CKR_ATTRIBUTE_VALUE_INVALID; // CKA_APPLICATION "ukey-policy" is ukey's own
        CK_RV rv = r.backend->call(&CK_FUNCTION_LIST::C_CreateObject, r.handle, pTemplate, ulCount, phObject);
        if (rv == CKR_OK)
            *phObject = objects_.to_app(r.tag, *phObject);
        return rv;
    });
}

CK_RV Proxy::CopyObject(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject, CK_ATTRIBUTE_PTR pTemplate,
                        CK_ULONG ulCount, CK_OBJECT_HANDLE_PTR phNewObject)
{
    if (!phNewObject || (!pTemplate && ulCount))
        return CKR_ARGUMENTS_BAD;
    return on_object(hSession, hObject, CKR_OBJECT_HANDLE_INVALID, [&](const SessionRoute& r, CK_OBJECT_HANDLE h) {
        if (names_key_policy(pTemplate, ulCount))
            return CKR_ATTRIBUTE_VALUE_INVALID;
        if (is_key_policy(*r.backend, r.handle, h))
            return CKR_ACTION_PROHIBITED; // a second policy object would make the Key untrusted
        CK_RV rv = r.backend->call(&CK_FUNCTION_LIST::C_CopyObject, r.handle, h, pTemplate, ulCount, phNewObject);
        if (rv == CKR_OK)
            *phNewObject = objects_.to_app(r.tag, *phNewObject);
        return rv;
    });
}

CK_RV Proxy::DestroyObject(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject)
{
    return on_object(hSession, hObject, CKR_OBJECT_HANDLE_INVALID, [&](const SessionRoute& r, CK_OBJECT_HANDLE h) {
        if (is_key_policy(*r.backend, r.handle, h))
            return CKR_ACTION_PROHIBITED;
        return r.backend->call(&CK_FUNCTION_LIST::C_DestroyObject, r.handle, h);
    });
}

CK_RV Proxy::GetObjectSize(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject, CK_ULONG_PTR pulSize)
{
    if (!pulSize)
        return CKR_ARGUMENTS_BAD;
    return on_object(hSession, hObject, CKR_OBJECT_HANDLE_INVALID, [&](const SessionRoute& r, CK_OBJECT_HANDLE h) {
        return r.backend->call(&CK_FUNCTION_LIST::C_GetObjectSize, r.handle, h, pulSize);
    });
}

CK_RV Proxy::GetAttributeValue(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject, CK_ATTRIBUTE_PTR pTemplate,
                               CK_ULONG ulCount)
{
    if (!pTemplate && ulCount)
        return CKR_ARGUMENTS_BAD;
    return on_object(hSession, hObject, CKR_OBJECT_HANDLE_INVALID, [&](const SessionRoute& r, CK_OBJECT_HANDLE h) {
        return r.backend->call(&CK_FUNCTION_LIST::C_GetAttributeValue, r.handle, h, pTemplate, ulCount);
    });
}

CK_RV Proxy::SetAttributeValue(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject, CK_ATTRIBUTE_PTR pTemplate,
                               CK_ULONG ulCount)
{
    if (!pTemplate && ulCount)
        return CKR_ARGUMENTS_BAD;
    return on_object(hSession, hObject, CKR_OBJECT_HANDLE_INVALID, [&](const SessionRoute& r, CK_OBJECT_HANDLE h) {
        if (is_key_policy(*r.backend, r.handle, h))
            return CKR_ACTION_PROHIBITED;
        if (names_key_policy(pTemplate, ulCount))
            return CKR_ATTRIBUTE_VALUE_INVALID;
        return r.backend->call(&CK_FUNCTION_LIST::C_SetAttributeValue, r.handle, h, pTemplate, ulCount);
    });
}

CK_RV Proxy::FindObjectsInit(CK_SESSION_HANDLE hSession, CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount)
{
    if (!pTemplate && ulCount)
        return CKR_ARGUMENTS_BAD;
    return on_session(hSession, [&](const SessionRoute& r) {
        CK_RV rv = r.backend->call(&CK_FUNCTION_LIST::C_FindObjectsInit, r.handle, pTemplate, ulCount);
        // Searches for certificates and keys (the usual ones) need no check.
        if (rv == CKR_OK)
            sessions_.set_hide_policy(hSession, may_find_key_policy(pTemplate, ulCount));
        return rv;
    });
}

CK_RV Proxy::FindObjects(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE_PTR phObject, CK_ULONG ulMaxObjectCount,
                         CK_ULONG_PTR pulObjectCount)
{
    if (!phObject || !pulObjectCount)
        return CKR_ARGUMENTS_BAD;
    return on_session(hSession, [&](const SessionRoute& r) {
        CK_ULONG filled = 0;
        for (;;) {
            CK_ULONG got = 0;
            CK_RV rv = r.backend->call(&CK_FUNCTION_LIST::C_FindObjects, r.handle, phObject + filled,
                                       ulMaxObjectCount - filled, &got);
            if (rv != CKR_OK)
                return rv;
            // A backend that claims more than it was allowed to write is
            // lying; never let that run past the application's array.
            got = std::min(got, ulMaxObjectCount - filled);
            const CK_ULONG asked = ulMaxObjectCount - filled;
            CK_ULONG kept = got;
            if (r.hide_policy) {
                CK_OBJECT_HANDLE* batch = phObject + filled;
                kept = 0;
                for (CK_ULONG i = 0; i < got; ++i)
                    if (!is_key_policy(*r.backend, r.handle, batch[i]))
                        batch[kept++] = batch[i];
            }
            filled += kept;
            // Only a skipped policy object leaves room the backend might fill.
            if (kept == got || got == 0 || filled == ulMaxObjectCount || got < asked)
                break;
        }
        objects_.to_app(r.tag, phObject, filled);
        *pulObjectCount = filled;
        return CKR_OK;
    });
}

CK_RV Proxy::FindObjectsFinal(CK_SESSION_HANDLE hSession)
{
    return forward(hSession, &CK_FUNCTION_LIST::C_FindObjectsFinal);
}

} // namespace ukey
