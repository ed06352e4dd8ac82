// Cryptographic operations and key management: arguments checked, handles
// translated, the call sent down the backend's stack.
#include "token/proxy.h"

#include "token/mechanism.h"

namespace ukey {

template <class Fn>
CK_RV Proxy::on_keyed(CK_SESSION_HANDLE hSession, const CK_MECHANISM& mechanism, CK_OBJECT_HANDLE hKey, CK_RV invalid,
                      Fn&& fn)
{
    return on_object(hSession, hKey, invalid, [&](const SessionRoute& r, CK_OBJECT_HANDLE key) {
        BackendMechanism m;
        if (CK_RV rv = m.init(mechanism, objects_, r.tag); rv != CKR_OK)
            return rv;
        return fn(r, m.get(), key);
    });
}

template <class E>
CK_RV Proxy::operation_init(E Stack::*fn, CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
                            CK_OBJECT_HANDLE hKey)
{
    if (!pMechanism)
        return CKR_ARGUMENTS_BAD;
    return on_keyed(hSession, *pMechanism, hKey, CKR_KEY_HANDLE_INVALID,
                    [&](const SessionRoute& r, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE key) {
                        return (stack(r.backend).*fn)(r, m, key);
                    });
}

// The functions of one shape, each a line.
#define UKEY_KEYED_INIT(name)                                                                                      \
    CK_RV Proxy::name(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey)              \
    {                                                                                                              \
        return operation_init(&Stack::name, hSession, pMechanism, hKey);                                           \
    }
#define UKEY_DATA_IN_OUT(name)                                                                                     \
    CK_RV Proxy::name(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pIn, CK_ULONG ulInLen, CK_BYTE_PTR pOut,             \
                      CK_ULONG_PTR pulOutLen)                                                                      \
    {                                                                                                              \
        return data_in_out(&Stack::name, hSession, pIn, ulInLen, pOut, pulOutLen);                                 \
    }
#define UKEY_DATA_OUT(name)                                                                                        \
    CK_RV Proxy::name(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pOut, CK_ULONG_PTR pulOutLen)                        \
    {                                                                                                              \
        return data_out(&Stack::name, hSession, pOut, pulOutLen);                                                  \
    }
#define UKEY_DATA_IN(name)                                                                                         \
    CK_RV Proxy::name(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pIn, CK_ULONG ulInLen)                               \
    {                                                                                                              \
        return data_in(&Stack::name, hSession, pIn, ulInLen);                                                      \
    }

UKEY_KEYED_INIT(EncryptInit)
UKEY_KEYED_INIT(DecryptInit)
UKEY_KEYED_INIT(SignInit)
UKEY_KEYED_INIT(SignRecoverInit)
UKEY_KEYED_INIT(VerifyInit)
UKEY_KEYED_INIT(VerifyRecoverInit)
UKEY_DATA_IN_OUT(Encrypt)
UKEY_DATA_IN_OUT(EncryptUpdate)
UKEY_DATA_IN_OUT(Decrypt)
UKEY_DATA_IN_OUT(DecryptUpdate)
UKEY_DATA_IN_OUT(Digest)
UKEY_DATA_IN_OUT(Sign)
UKEY_DATA_IN_OUT(SignRecover)
UKEY_DATA_IN_OUT(VerifyRecover)
UKEY_DATA_IN_OUT(DigestEncryptUpdate)
UKEY_DATA_IN_OUT(DecryptDigestUpdate)
UKEY_DATA_IN_OUT(SignEncryptUpdate)
UKEY_DATA_IN_OUT(DecryptVerifyUpdate)
UKEY_DATA_OUT(EncryptFinal)
UKEY_DATA_OUT(DecryptFinal)
UKEY_DATA_OUT(DigestFinal)
UKEY_DATA_OUT(SignFinal)
UKEY_DATA_IN(DigestUpdate)
UKEY_DATA_IN(SignUpdate)
UKEY_DATA_IN(VerifyUpdate)
UKEY_DATA_IN(VerifyFinal)
UKEY_DATA_IN(SeedRandom)
UKEY_DATA_IN(GenerateRandom)

CK_RV Proxy::DigestInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism)
{
    if (!pMechanism)
        return CKR_ARGUMENTS_BAD;
    return forward(hSession, &Stack::DigestInit, pMechanism);
}

CK_RV Proxy::Verify(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pData, CK_ULONG ulDataLen, CK_BYTE_PTR pSignature,
                    CK_ULONG ulSignatureLen)
{
    if ((!pData && ulDataLen) || (!pSignature && ulSignatureLen))
        return CKR_ARGUMENTS_BAD;
    return forward(hSession, &Stack::Verify, pData, ulDataLen, pSignature, ulSignatureLen);
}

CK_RV Proxy::DigestKey(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hKey)
{
    return object_forward(hSession, hKey, CKR_KEY_HANDLE_INVALID, &Stack::DigestKey);
}

CK_RV Proxy::GenerateKey(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_ATTRIBUTE_PTR pTemplate,
                         CK_ULONG ulCount, CK_OBJECT_HANDLE_PTR phKey)
{
    if (!pMechanism || !phKey || (!pTemplate && ulCount))
        return CKR_ARGUMENTS_BAD;
    return on_session(hSession, [&](const SessionRoute& r) {
        CK_RV rv = stack(r.backend).GenerateKey(r, pMechanism, pTemplate, ulCount, phKey);
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
        CK_RV rv = stack(r.backend).GenerateKeyPair(r, pMechanism, pPublicKeyTemplate, ulPublicKeyAttributeCount,
                                                    pPrivateKeyTemplate, ulPrivateKeyAttributeCount, phPublicKey,
                                                    phPrivateKey);
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
    return on_keyed(hSession, *pMechanism, hWrappingKey, CKR_WRAPPING_KEY_HANDLE_INVALID,
                    [&](const SessionRoute& r, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE wrapping) {
                        CK_OBJECT_HANDLE key;
                        if (CK_RV rv = object(r, hKey, key, CKR_KEY_HANDLE_INVALID); rv != CKR_OK)
                            return rv;
                        return stack(r.backend).WrapKey(r, m, wrapping, key, pWrappedKey, pulWrappedKeyLen);
                    });
}

CK_RV Proxy::UnwrapKey(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hUnwrappingKey,
                       CK_BYTE_PTR pWrappedKey, CK_ULONG ulWrappedKeyLen, CK_ATTRIBUTE_PTR pTemplate,
                       CK_ULONG ulAttributeCount, CK_OBJECT_HANDLE_PTR phKey)
{
    if (!pMechanism || !phKey || (!pWrappedKey && ulWrappedKeyLen) || (!pTemplate && ulAttributeCount))
        return CKR_ARGUMENTS_BAD;
    return on_keyed(hSession, *pMechanism, hUnwrappingKey, CKR_UNWRAPPING_KEY_HANDLE_INVALID,
                    [&](const SessionRoute& r, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE unwrapping) {
                        CK_RV rv = stack(r.backend).UnwrapKey(r, m, unwrapping, pWrappedKey, ulWrappedKeyLen,
                                                              pTemplate, ulAttributeCount, phKey);
                        if (rv == CKR_OK)
                            *phKey = objects_.to_app(r.tag, *phKey);
                        return rv;
                    });
}

CK_RV Proxy::DeriveKey(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hBaseKey,
                       CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulAttributeCount, CK_OBJECT_HANDLE_PTR phKey)
{
    // phKey may be NULL: the SSL3/TLS key-and-MAC mechanisms return their
    // keys inside the parameter instead.
    if (!pMechanism || (!pTemplate && ulAttributeCount))
        return CKR_ARGUMENTS_BAD;
    return on_keyed(hSession, *pMechanism, hBaseKey, CKR_KEY_HANDLE_INVALID,
                    [&](const SessionRoute& r, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE base) {
                        CK_RV rv = stack(r.backend).DeriveKey(r, m, base, pTemplate, ulAttributeCount, phKey);
                        if (rv == CKR_OK) {
                            if (phKey)
                                *phKey = objects_.to_app(r.tag, *phKey);
                            translate_derived_handles(*pMechanism, objects_, r.tag);
                        }
                        return rv;
                    });
}

} // namespace ukey
