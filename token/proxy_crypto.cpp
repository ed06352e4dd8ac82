// Cryptographic operations and key management.
#include "token/proxy.h"

#include "token/mechanism.h"

namespace ukey {

CK_RV Proxy::OperationInit(Op op, CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey)
{
    if (!pMechanism)
        return CKR_ARGUMENTS_BAD;
    return on_session(hSession, [&](const SessionRoute& r) {
        if (op == Op::digest)
            return r.backend->call(&CK_FUNCTION_LIST::C_DigestInit, r.handle, pMechanism);
        CK_OBJECT_HANDLE key;
        if (CK_RV rv = object(r, hKey, key, CKR_KEY_HANDLE_INVALID); rv != CKR_OK)
            return rv;
        BackendMechanism m;
        if (CK_RV rv = m.init(*pMechanism, objects_, r.tag); rv != CKR_OK)
            return rv;
        const Backend& b = *r.backend;
        CK_RV rv = CKR_GENERAL_ERROR;
        switch (op) {
        case Op::encrypt: rv = b.call(&CK_FUNCTION_LIST::C_EncryptInit, r.handle, m.get(), key); break;
        case Op::decrypt: rv = b.call(&CK_FUNCTION_LIST::C_DecryptInit, r.handle, m.get(), key); break;
        case Op::sign: rv = b.call(&CK_FUNCTION_LIST::C_SignInit, r.handle, m.get(), key); break;
        case Op::sign_recover: rv = b.call(&CK_FUNCTION_LIST::C_SignRecoverInit, r.handle, m.get(), key); break;
        case Op::verify: rv = b.call(&CK_FUNCTION_LIST::C_VerifyInit, r.handle, m.get(), key); break;
        case Op::verify_recover: rv = b.call(&CK_FUNCTION_LIST::C_VerifyRecoverInit, r.handle, m.get(), key); break;
        case Op::digest: break;
        }
        return key_rv(rv);
    });
}

CK_RV Proxy::Verify(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pData, CK_ULONG ulDataLen, CK_BYTE_PTR pSignature,
                    CK_ULONG ulSignatureLen)
{
    if ((!pData && ulDataLen) || (!pSignature && ulSignatureLen))
        return CKR_ARGUMENTS_BAD;
    return forward(hSession, &CK_FUNCTION_LIST::C_Verify, pData, ulDataLen, pSignature, ulSignatureLen);
}

CK_RV Proxy::DigestKey(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hKey)
{
    return on_object(hSession, hKey, CKR_KEY_HANDLE_INVALID, [&](const SessionRoute& r, CK_OBJECT_HANDLE key) {
        return key_rv(r.backend->call(&CK_FUNCTION_LIST::C_DigestKey, r.handle, key));
    });
}

CK_RV Proxy::GenerateKey(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_ATTRIBUTE_PTR pTemplate,
                         CK_ULONG ulCount, CK_OBJECT_HANDLE_PTR phKey)
{
    if (!pMechanism || !phKey || (!pTemplate && ulCount))
        return CKR_ARGUMENTS_BAD;
    return on_session(hSession, [&](const SessionRoute& r) {
        CK_RV rv = r.backend->call(&CK_FUNCTION_LIST::C_GenerateKey, r.handle, pMechanism, pTemplate, ulCount, phKey);
        if (rv == CKR_OK)
            *phKey = objects_.to_app(r.tag, *phKey);
        return rv;
    });
}

CK_RV Proxy::GenerateKeyPair(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
                             CK_ATTRIBUTE_PTR pPublicKeyTemplate, CK_ULONG ulPublicKeyAttributeCount,
                             CK_ATTRIBUTE_PTR pPrivateKeyTemplate, CK_ULONG ulPrivateKeyAttributeCount,
                             CK_OBJECT_HANDLE_PTR phPublicKey, CK_OBJECT_HANDLE_PTR phPrivateKey)
{
    if (!pMechanism || !phPublicKey || !phPrivateKey || (!pPublicKeyTemplate && ulPublicKeyAttributeCount) ||
        (!pPrivateKeyTemplate && ulPrivateKeyAttributeCount))
        return CKR_ARGUMENTS_BAD;
    return on_session(hSession, [&](const SessionRoute& r) {
        CK_RV rv = r.backend->call(&CK_FUNCTION_LIST::C_GenerateKeyPair, r.handle, pMechanism, pPublicKeyTemplate,
                                   ulPublicKeyAttributeCount, pPrivateKeyTemplate, ulPrivateKeyAttributeCount,
                                   phPublicKey, phPrivateKey);
        if (rv == CKR_OK) {
            *phPublicKey = objects_.to_app(r.tag, *phPublicKey);
            *phPrivateKey = objects_.to_app(r.tag, *phPrivateKey);
        }
        return rv;
    });
}

CK_RV Proxy::WrapKey(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hWrappingKey,
                     CK_OBJECT_HANDLE hKey, CK_BYTE_PTR pWrappedKey, CK_ULONG_PTR pulWrappedKeyLen)
{
    if (!pMechanism || !pulWrappedKeyLen)
        return CKR_ARGUMENTS_BAD;
    return on_session(hSession, [&](const SessionRoute& r) {
        CK_OBJECT_HANDLE wrapping, key;
        if (CK_RV rv = object(r, hWrappingKey, wrapping, CKR_WRAPPING_KEY_HANDLE_INVALID); rv != CKR_OK)
            return rv;
        if (CK_RV rv = object(r, hKey, key, CKR_KEY_HANDLE_INVALID); rv != CKR_OK)
            return rv;
        BackendMechanism m;
        if (CK_RV rv = m.init(*pMechanism, objects_, r.tag); rv != CKR_OK)
            return rv;
        CK_RV rv = r.backend->call(&CK_FUNCTION_LIST::C_WrapKey, r.handle, m.get(), wrapping, key, pWrappedKey,
                                   pulWrappedKeyLen);
        if (rv == CKR_OBJECT_HANDLE_INVALID) {
            // Say which of the two keys is missing.
            CK_OBJECT_CLASS cls;
            CK_ATTRIBUTE a{CKA_CLASS, &cls, sizeof cls};
            CK_RV probe = r.backend->call(&CK_FUNCTION_LIST::C_GetAttributeValue, r.handle, wrapping, &a, CK_ULONG(1));
            rv = probe == CKR_OBJECT_HANDLE_INVALID ? CKR_WRAPPING_KEY_HANDLE_INVALID : CKR_KEY_HANDLE_INVALID;
        }
        return rv;
    });
}

CK_RV Proxy::UnwrapKey(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hUnwrappingKey,
                       CK_BYTE_PTR pWrappedKey, CK_ULONG ulWrappedKeyLen, CK_ATTRIBUTE_PTR pTemplate,
                       CK_ULONG ulAttributeCount, CK_OBJECT_HANDLE_PTR phKey)
{
    if (!pMechanism || !phKey || (!pWrappedKey && ulWrappedKeyLen) || (!pTemplate && ulAttributeCount))
        return CKR_ARGUMENTS_BAD;
    return on_session(hSession, [&](const SessionRoute& r) {
        CK_OBJECT_HANDLE unwrapping;
        if (CK_RV rv = object(r, hUnwrappingKey, unwrapping, CKR_UNWRAPPING_KEY_HANDLE_INVALID); rv != CKR_OK)
            return rv;
        BackendMechanism m;
        if (CK_RV rv = m.init(*pMechanism, objects_, r.tag); rv != CKR_OK)
            return rv;
        CK_RV rv = r.backend->call(&CK_FUNCTION_LIST::C_UnwrapKey, r.handle, m.get(), unwrapping, pWrappedKey,
                                   ulWrappedKeyLen, pTemplate, ulAttributeCount, phKey);
        if (rv == CKR_OK)
            *phKey = objects_.to_app(r.tag, *phKey);
        return key_rv(rv, CKR_UNWRAPPING_KEY_HANDLE_INVALID);
    });
}

CK_RV Proxy::DeriveKey(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hBaseKey,
                       CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulAttributeCount, CK_OBJECT_HANDLE_PTR phKey)
{
    // phKey may be NULL: the SSL3/TLS key-and-MAC mechanisms return their
    // keys inside the parameter instead.
    if (!pMechanism || (!pTemplate && ulAttributeCount))
        return CKR_ARGUMENTS_BAD;
    return on_session(hSession, [&](const SessionRoute& r) {
        CK_OBJECT_HANDLE base;
        if (CK_RV rv = object(r, hBaseKey, base, CKR_KEY_HANDLE_INVALID); rv != CKR_OK)
            return rv;
        BackendMechanism m;
        if (CK_RV rv = m.init(*pMechanism, objects_, r.tag); rv != CKR_OK)
            return rv;
        CK_RV rv = r.backend->call(&CK_FUNCTION_LIST::C_DeriveKey, r.handle, m.get(), base, pTemplate,
                                   ulAttributeCount, phKey);
        if (rv == CKR_OK) {
            if (phKey)
                *phKey = objects_.to_app(r.tag, *phKey);
            translate_derived_handles(*pMechanism, objects_, r.tag);
        }
        return key_rv(rv);
    });
}

} // namespace ukey
