// Objects: create, copy, destroy, attributes, search.
#include "token/proxy.h"

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
        CK_RV rv = stack(r.backend).CreateObject(r, pTemplate, ulCount, phObject);
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
        CK_RV rv = stack(r.backend).CopyObject(r, h, pTemplate, ulCount, phNewObject);
        if (rv == CKR_OK)
            *phNewObject = objects_.to_app(r.tag, *phNewObject);
        return rv;
    });
}

CK_RV Proxy::DestroyObject(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject)
{
    return object_forward(hSession, hObject, CKR_OBJECT_HANDLE_INVALID, &Stack::DestroyObject);
}

CK_RV Proxy::GetObjectSize(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject, CK_ULONG_PTR pulSize)
{
    if (!pulSize)
        return CKR_ARGUMENTS_BAD;
    return object_forward(hSession, hObject, CKR_OBJECT_HANDLE_INVALID, &Stack::GetObjectSize, pulSize);
}

CK_RV Proxy::GetAttributeValue(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject, CK_ATTRIBUTE_PTR pTemplate,
                               CK_ULONG ulCount)
{
    if (!pTemplate && ulCount)
        return CKR_ARGUMENTS_BAD;
    return object_forward(hSession, hObject, CKR_OBJECT_HANDLE_INVALID, &Stack::GetAttributeValue, pTemplate, ulCount);
}

CK_RV Proxy::SetAttributeValue(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject, CK_ATTRIBUTE_PTR pTemplate,
                               CK_ULONG ulCount)
{
    if (!pTemplate && ulCount)
        return CKR_ARGUMENTS_BAD;
    return object_forward(hSession, hObject, CKR_OBJECT_HANDLE_INVALID, &Stack::SetAttributeValue, pTemplate, ulCount);
}

CK_RV Proxy::FindObjectsInit(CK_SESSION_HANDLE hSession, CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount)
{
    if (!pTemplate && ulCount)
        return CKR_ARGUMENTS_BAD;
    return forward(hSession, &Stack::FindObjectsInit, pTemplate, ulCount);
}

CK_RV Proxy::FindObjects(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE_PTR phObject, CK_ULONG ulMaxObjectCount,
                         CK_ULONG_PTR pulObjectCount)
{
    if (!phObject || !pulObjectCount)
        return CKR_ARGUMENTS_BAD;
    return on_session(hSession, [&](const SessionRoute& r) {
        CK_ULONG got = 0;
        CK_RV rv = stack(r.backend).FindObjects(r, phObject, ulMaxObjectCount, &got);
        if (rv != CKR_OK)
            return rv;
        // A backend that claims more than it was allowed to write is lying;
        // never let that run past the application's array.
        got = std::min(got, ulMaxObjectCount);
        objects_.to_app(r.tag, phObject, got);
        *pulObjectCount = got;
        return CKR_OK;
    });
}

CK_RV Proxy::FindObjectsFinal(CK_SESSION_HANDLE hSession)
{
    return forward(hSession, &Stack::FindObjectsFinal);
}

} // namespace ukey
