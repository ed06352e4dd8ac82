// The C boundary of libukey-pkcs11.so. Every entry point checks that the
// module is initialised in this process, calls into ukey::Proxy, and turns
// any C++ exception into a CKR_* code: nothing but a CK_RV crosses the ABI.
#include "token/fork.h"
#include "token/proxy.h"

#include <ukey/pkcs11.h>
#include <ukey/vendor.h>

#include <cstring>
#include <new>

#define UKEY_EXPORT extern "C" __attribute__((visibility("default")))

using ukey::Proxy;

namespace {

template <class F>
CK_RV guard(F&& f) noexcept
{
    try {
        return f();
    } catch (const std::bad_alloc&) {
        return CKR_HOST_MEMORY;
    } catch (...) {
        return CKR_GENERAL_ERROR;
    }
}

// Runs `expr` on the active Proxy as `p`, under a ForkGuard for the whole
// call: fork() waits until no thread is anywhere inside ukey, not only inside
// a backend. A thread forked away in the middle of ukey's own code could
// leave a lock of the allocator held in the child (glibc's malloc is
// fork-safe, GCC 12's ASan allocator is not: that was module.fork_test's
// intermittent hang). Nested guards (the backend calls inside) cost one
// thread-local increment.
#define UKEY_CALL(expr)                                                                                            \
    guard([&]() -> CK_RV {                                                                                         \
        Proxy* p = Proxy::active();                                                                                \
        if (!p)                                                                                                    \
            return CKR_CRYPTOKI_NOT_INITIALIZED;                                                                   \
        ukey::ForkGuard no_fork_meanwhile;                                                                         \
        return expr;                                                                                               \
    })

// The same without the guard, for a call that may block indefinitely
// (C_WaitForSlotEvent): holding a guard there would hold up fork() for as
// long. Its backend calls take their own guards.
#define UKEY_CALL_MAY_BLOCK(expr)                                                                                  \
    guard([&]() -> CK_RV {                                                                                         \
        Proxy* p = Proxy::active();                                                                                \
        if (!p)                                                                                                    \
            return CKR_CRYPTOKI_NOT_INITIALIZED;                                                                   \
        return expr;                                                                                               \
    })

using Op = Proxy::Op;
using FL = CK_FUNCTION_LIST;

extern CK_FUNCTION_LIST function_list;

} // namespace

UKEY_EXPORT CK_RV C_Initialize(CK_VOID_PTR pInitArgs)
{
    return guard([&] { return Proxy::Initialize(pInitArgs); });
}

UKEY_EXPORT CK_RV C_Finalize(CK_VOID_PTR pReserved)
{
    return guard([&] { return Proxy::Finalize(pReserved); });
}

UKEY_EXPORT CK_RV C_GetInfo(CK_INFO_PTR pInfo)
{
    return UKEY_CALL(p->GetInfo(pInfo));
}

UKEY_EXPORT CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR ppFunctionList)
{
    if (!ppFunctionList)
        return CKR_ARGUMENTS_BAD;
    *ppFunctionList = &function_list;
    return CKR_OK;
}

UKEY_EXPORT CK_RV C_GetSlotList(CK_BBOOL tokenPresent, CK_SLOT_ID_PTR pSlotList, CK_ULONG_PTR pulCount)
{
    return UKEY_CALL(p->GetSlotList(tokenPresent, pSlotList, pulCount));
}

UKEY_EXPORT CK_RV C_GetSlotInfo(CK_SLOT_ID slotID, CK_SLOT_INFO_PTR pInfo)
{
    return UKEY_CALL(p->GetSlotInfo(slotID, pInfo));
}

UKEY_EXPORT CK_RV C_GetTokenInfo(CK_SLOT_ID slotID, CK_TOKEN_INFO_PTR pInfo)
{
    return UKEY_CALL(p->GetTokenInfo(slotID, pInfo));
}

UKEY_EXPORT CK_RV C_GetMechanismList(CK_SLOT_ID slotID, CK_MECHANISM_TYPE_PTR pMechanismList, CK_ULONG_PTR pulCount)
{
    return UKEY_CALL(p->GetMechanismList(slotID, pMechanismList, pulCount));
}

UKEY_EXPORT CK_RV C_GetMechanismInfo(CK_SLOT_ID slotID, CK_MECHANISM_TYPE type, CK_MECHANISM_INFO_PTR pInfo)
{
    return UKEY_CALL(p->GetMechanismInfo(slotID, type, pInfo));
}

UKEY_EXPORT CK_RV C_InitToken(CK_SLOT_ID slotID, CK_UTF8CHAR_PTR pPin, CK_ULONG ulPinLen, CK_UTF8CHAR_PTR pLabel)
{
    return UKEY_CALL(p->InitToken(slotID, pPin, ulPinLen, pLabel));
}

UKEY_EXPORT CK_RV C_InitPIN(CK_SESSION_HANDLE hSession, CK_UTF8CHAR_PTR pPin, CK_ULONG ulPinLen)
{
    return UKEY_CALL(p->InitPIN(hSession, pPin, ulPinLen));
}

UKEY_EXPORT CK_RV C_SetPIN(CK_SESSION_HANDLE hSession, CK_UTF8CHAR_PTR pOldPin, CK_ULONG ulOldLen,
                           CK_UTF8CHAR_PTR pNewPin, CK_ULONG ulNewLen)
{
    return UKEY_CALL(p->SetPIN(hSession, pOldPin, ulOldLen, pNewPin, ulNewLen));
}

UKEY_EXPORT CK_RV C_OpenSession(CK_SLOT_ID slotID, CK_FLAGS flags, CK_VOID_PTR pApplication, CK_NOTIFY Notify,
                                CK_SESSION_HANDLE_PTR phSession)
{
    return UKEY_CALL(p->OpenSession(slotID, flags, pApplication, Notify, phSession));
}

UKEY_EXPORT CK_RV C_CloseSession(CK_SESSION_HANDLE hSession)
{
    return UKEY_CALL(p->CloseSession(hSession));
}

UKEY_EXPORT CK_RV C_CloseAllSessions(CK_SLOT_ID slotID)
{
    return UKEY_CALL(p->CloseAllSessions(slotID));
}

UKEY_EXPORT CK_RV C_GetSessionInfo(CK_SESSION_HANDLE hSession, CK_SESSION_INFO_PTR pInfo)
{
    return UKEY_CALL(p->GetSessionInfo(hSession, pInfo));
}

UKEY_EXPORT CK_RV C_GetOperationState(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pOperationState,
                                      CK_ULONG_PTR pulOperationStateLen)
{
    return UKEY_CALL(p->GetOperationState(hSession, pOperationState, pulOperationStateLen));
}

UKEY_EXPORT CK_RV C_SetOperationState(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pOperationState,
                                      CK_ULONG ulOperationStateLen, CK_OBJECT_HANDLE hEncryptionKey,
                                      CK_OBJECT_HANDLE hAuthenticationKey)
{
    return UKEY_CALL(
        p->SetOperationState(hSession, pOperationState, ulOperationStateLen, hEncryptionKey, hAuthenticationKey));
}

UKEY_EXPORT CK_RV C_Login(CK_SESSION_HANDLE hSession, CK_USER_TYPE userType, CK_UTF8CHAR_PTR pPin, CK_ULONG ulPinLen)
{
    return UKEY_CALL(p->Login(hSession, userType, pPin, ulPinLen));
}

UKEY_EXPORT CK_RV C_Logout(CK_SESSION_HANDLE hSession)
{
    return UKEY_CALL(p->Logout(hSession));
}

UKEY_EXPORT CK_RV C_CreateObject(CK_SESSION_HANDLE hSession, CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount,
                                 CK_OBJECT_HANDLE_PTR phObject)
{
    return UKEY_CALL(p->CreateObject(hSession, pTemplate, ulCount, phObject));
}

UKEY_EXPORT CK_RV C_CopyObject(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject, CK_ATTRIBUTE_PTR pTemplate,
                               CK_ULONG ulCount, CK_OBJECT_HANDLE_PTR phNewObject)
{
    return UKEY_CALL(p->CopyObject(hSession, hObject, pTemplate, ulCount, phNewObject));
}

UKEY_EXPORT CK_RV C_DestroyObject(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject)
{
    return UKEY_CALL(p->DestroyObject(hSession, hObject));
}

UKEY_EXPORT CK_RV C_GetObjectSize(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject, CK_ULONG_PTR pulSize)
{
    return UKEY_CALL(p->GetObjectSize(hSession, hObject, pulSize));
}

UKEY_EXPORT CK_RV C_GetAttributeValue(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject,
                                      CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount)
{
    return UKEY_CALL(p->GetAttributeValue(hSession, hObject, pTemplate, ulCount));
}

UKEY_EXPORT CK_RV C_SetAttributeValue(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject,
                                      CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount)
{
    return UKEY_CALL(p->SetAttributeValue(hSession, hObject, pTemplate, ulCount));
}

UKEY_EXPORT CK_RV C_FindObjectsInit(CK_SESSION_HANDLE hSession, CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount)
{
    return UKEY_CALL(p->FindObjectsInit(hSession, pTemplate, ulCount));
}

UKEY_EXPORT CK_RV C_FindObjects(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE_PTR phObject,
                                CK_ULONG ulMaxObjectCount, CK_ULONG_PTR pulObjectCount)
{
    return UKEY_CALL(p->FindObjects(hSession, phObject, ulMaxObjectCount, pulObjectCount));
}

UKEY_EXPORT CK_RV C_FindObjectsFinal(CK_SESSION_HANDLE hSession)
{
    return UKEY_CALL(p->FindObjectsFinal(hSession));
}

UKEY_EXPORT CK_RV C_EncryptInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey)
{
    return UKEY_CALL(p->OperationInit(Op::encrypt, hSession, pMechanism, hKey));
}

UKEY_EXPORT CK_RV C_Encrypt(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pData, CK_ULONG ulDataLen,
                            CK_BYTE_PTR pEncryptedData, CK_ULONG_PTR pulEncryptedDataLen)
{
    return UKEY_CALL(p->InOut(&FL::C_Encrypt, hSession, pData, ulDataLen, pEncryptedData, pulEncryptedDataLen));
}

UKEY_EXPORT CK_RV C_EncryptUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pPart, CK_ULONG ulPartLen,
                                  CK_BYTE_PTR pEncryptedPart, CK_ULONG_PTR pulEncryptedPartLen)
{
    return UKEY_CALL(p->InOut(&FL::C_EncryptUpdate, hSession, pPart, ulPartLen, pEncryptedPart, pulEncryptedPartLen));
}

UKEY_EXPORT CK_RV C_EncryptFinal(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pLastEncryptedPart,
                                 CK_ULONG_PTR pulLastEncryptedPartLen)
{
    return UKEY_CALL(p->Out(&FL::C_EncryptFinal, hSession, pLastEncryptedPart, pulLastEncryptedPartLen));
}

UKEY_EXPORT CK_RV C_DecryptInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey)
{
    return UKEY_CALL(p->OperationInit(Op::decrypt, hSession, pMechanism, hKey));
}

UKEY_EXPORT CK_RV C_Decrypt(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pEncryptedData, CK_ULONG ulEncryptedDataLen,
                            CK_BYTE_PTR pData, CK_ULONG_PTR pulDataLen)
{
    return UKEY_CALL(p->InOut(&FL::C_Decrypt, hSession, pEncryptedData, ulEncryptedDataLen, pData, pulDataLen));
}

UKEY_EXPORT CK_RV C_DecryptUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pEncryptedPart,
                                  CK_ULONG ulEncryptedPartLen, CK_BYTE_PTR pPart, CK_ULONG_PTR pulPartLen)
{
    return UKEY_CALL(p->InOut(&FL::C_DecryptUpdate, hSession, pEncryptedPart, ulEncryptedPartLen, pPart, pulPartLen));
}

UKEY_EXPORT CK_RV C_DecryptFinal(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pLastPart, CK_ULONG_PTR pulLastPartLen)
{
    return UKEY_CALL(p->Out(&FL::C_DecryptFinal, hSession, pLastPart, pulLastPartLen));
}

UKEY_EXPORT CK_RV C_DigestInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism)
{
    return UKEY_CALL(p->OperationInit(Op::digest, hSession, pMechanism, CK_INVALID_HANDLE));
}

UKEY_EXPORT CK_RV C_Digest(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pData, CK_ULONG ulDataLen, CK_BYTE_PTR pDigest,
                           CK_ULONG_PTR pulDigestLen)
{
    return UKEY_CALL(p->InOut(&FL::C_Digest, hSession, pData, ulDataLen, pDigest, pulDigestLen));
}

UKEY_EXPORT CK_RV C_DigestUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pPart, CK_ULONG ulPartLen)
{
    return UKEY_CALL(p->In(&FL::C_DigestUpdate, hSession, pPart, ulPartLen));
}

UKEY_EXPORT CK_RV C_DigestKey(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hKey)
{
    return UKEY_CALL(p->DigestKey(hSession, hKey));
}

UKEY_EXPORT CK_RV C_DigestFinal(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pDigest, CK_ULONG_PTR pulDigestLen)
{
    return UKEY_CALL(p->Out(&FL::C_DigestFinal, hSession, pDigest, pulDigestLen));
}

UKEY_EXPORT CK_RV C_SignInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey)
{
    return UKEY_CALL(p->OperationInit(Op::sign, hSession, pMechanism, hKey));
}

UKEY_EXPORT CK_RV C_Sign(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pData, CK_ULONG ulDataLen, CK_BYTE_PTR pSignature,
                         CK_ULONG_PTR pulSignatureLen)
{
    return UKEY_CALL(p->InOut(&FL::C_Sign, hSession, pData, ulDataLen, pSignature, pulSignatureLen));
}

UKEY_EXPORT CK_RV C_SignUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pPart, CK_ULONG ulPartLen)
{
    return UKEY_CALL(p->In(&FL::C_SignUpdate, hSession, pPart, ulPartLen));
}

UKEY_EXPORT CK_RV C_SignFinal(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pSignature, CK_ULONG_PTR pulSignatureLen)
{
    return UKEY_CALL(p->Out(&FL::C_SignFinal, hSession, pSignature, pulSignatureLen));
}

UKEY_EXPORT CK_RV C_SignRecoverInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey)
{
    return UKEY_CALL(p->OperationInit(Op::sign_recover, hSession, pMechanism, hKey));
}

UKEY_EXPORT CK_RV C_SignRecover(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pData, CK_ULONG ulDataLen,
                                CK_BYTE_PTR pSignature, CK_ULONG_PTR pulSignatureLen)
{
    return UKEY_CALL(p->InOut(&FL::C_SignRecover, hSession, pData, ulDataLen, pSignature, pulSignatureLen));
}

UKEY_EXPORT CK_RV C_VerifyInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey)
{
    return UKEY_CALL(p->OperationInit(Op::verify, hSession, pMechanism, hKey));
}

UKEY_EXPORT CK_RV C_Verify(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pData, CK_ULONG ulDataLen, CK_BYTE_PTR pSignature,
                           CK_ULONG ulSignatureLen)
{
    return UKEY_CALL(p->Verify(hSession, pData, ulDataLen, pSignature, ulSignatureLen));
}

UKEY_EXPORT CK_RV C_VerifyUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pPart, CK_ULONG ulPartLen)
{
    return UKEY_CALL(p->In(&FL::C_VerifyUpdate, hSession, pPart, ulPartLen));
}

UKEY_EXPORT CK_RV C_VerifyFinal(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pSignature, CK_ULONG ulSignatureLen)
{
    return UKEY_CALL(p->In(&FL::C_VerifyFinal, hSession, pSignature, ulSignatureLen));
}

UKEY_EXPORT CK_RV C_VerifyRecoverInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey)
{
    return UKEY_CALL(p->OperationInit(Op::verify_recover, hSession, pMechanism, hKey));
}

UKEY_EXPORT CK_RV C_VerifyRecover(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pSignature, CK_ULONG ulSignatureLen,
                                  CK_BYTE_PTR pData, CK_ULONG_PTR pulDataLen)
{
    return UKEY_CALL(p->InOut(&FL::C_VerifyRecover, hSession, pSignature, ulSignatureLen, pData, pulDataLen));
}

UKEY_EXPORT CK_RV C_DigestEncryptUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pPart, CK_ULONG ulPartLen,
                                        CK_BYTE_PTR pEncryptedPart, CK_ULONG_PTR pulEncryptedPartLen)
{
    return UKEY_CALL(
        p->InOut(&FL::C_DigestEncryptUpdate, hSession, pPart, ulPartLen, pEncryptedPart, pulEncryptedPartLen));
}

UKEY_EXPORT CK_RV C_DecryptDigestUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pEncryptedPart,
                                        CK_ULONG ulEncryptedPartLen, CK_BYTE_PTR pPart, CK_ULONG_PTR pulPartLen)
{
    return UKEY_CALL(
        p->InOut(&FL::C_DecryptDigestUpdate, hSession, pEncryptedPart, ulEncryptedPartLen, pPart, pulPartLen));
}

UKEY_EXPORT CK_RV C_SignEncryptUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pPart, CK_ULONG ulPartLen,
                                      CK_BYTE_PTR pEncryptedPart, CK_ULONG_PTR pulEncryptedPartLen)
{
    return UKEY_CALL(
        p->InOut(&FL::C_SignEncryptUpdate, hSession, pPart, ulPartLen, pEncryptedPart, pulEncryptedPartLen));
}

UKEY_EXPORT CK_RV C_DecryptVerifyUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pEncryptedPart,
                                        CK_ULONG ulEncryptedPartLen, CK_BYTE_PTR pPart, CK_ULONG_PTR pulPartLen)
{
    return UKEY_CALL(
        p->InOut(&FL::C_DecryptVerifyUpdate, hSession, pEncryptedPart, ulEncryptedPartLen, pPart, pulPartLen));
}

UKEY_EXPORT CK_RV C_GenerateKey(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_ATTRIBUTE_PTR pTemplate,
                                CK_ULONG ulCount, CK_OBJECT_HANDLE_PTR phKey)
{
    return UKEY_CALL(p->GenerateKey(hSession, pMechanism, pTemplate, ulCount, phKey));
}

UKEY_EXPORT CK_RV C_GenerateKeyPair(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
                                    CK_ATTRIBUTE_PTR pPublicKeyTemplate, CK_ULONG ulPublicKeyAttributeCount,
                                    CK_ATTRIBUTE_PTR pPrivateKeyTemplate, CK_ULONG ulPrivateKeyAttributeCount,
                                    CK_OBJECT_HANDLE_PTR phPublicKey, CK_OBJECT_HANDLE_PTR phPrivateKey)
{
    return UKEY_CALL(p->GenerateKeyPair(hSession, pMechanism, pPublicKeyTemplate, ulPublicKeyAttributeCount,
                                        pPrivateKeyTemplate, ulPrivateKeyAttributeCount, phPublicKey, phPrivateKey));
}

UKEY_EXPORT CK_RV C_WrapKey(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hWrappingKey,
                            CK_OBJECT_HANDLE hKey, CK_BYTE_PTR pWrappedKey, CK_ULONG_PTR pulWrappedKeyLen)
{
    return UKEY_CALL(p->WrapKey(hSession, pMechanism, hWrappingKey, hKey, pWrappedKey, pulWrappedKeyLen));
}

UKEY_EXPORT CK_RV C_UnwrapKey(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
                              CK_OBJECT_HANDLE hUnwrappingKey, CK_BYTE_PTR pWrappedKey, CK_ULONG ulWrappedKeyLen,
                              CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulAttributeCount, CK_OBJECT_HANDLE_PTR phKey)
{
    return UKEY_CALL(p->UnwrapKey(hSession, pMechanism, hUnwrappingKey, pWrappedKey, ulWrappedKeyLen, pTemplate,
                                  ulAttributeCount, phKey));
}

UKEY_EXPORT CK_RV C_DeriveKey(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hBaseKey,
                              CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulAttributeCount, CK_OBJECT_HANDLE_PTR phKey)
{
    return UKEY_CALL(p->DeriveKey(hSession, pMechanism, hBaseKey, pTemplate, ulAttributeCount, phKey));
}

UKEY_EXPORT CK_RV C_SeedRandom(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pSeed, CK_ULONG ulSeedLen)
{
    return UKEY_CALL(p->In(&FL::C_SeedRandom, hSession, pSeed, ulSeedLen));
}

UKEY_EXPORT CK_RV C_GenerateRandom(CK_SESSION_HANDLE hSession, CK_BYTE_PTR RandomData, CK_ULONG ulRandomLen)
{
    return UKEY_CALL(p->In(&FL::C_GenerateRandom, hSession, RandomData, ulRandomLen));
}

UKEY_EXPORT CK_RV C_GetFunctionStatus(CK_SESSION_HANDLE hSession)
{
    return UKEY_CALL(p->GetFunctionStatus(hSession));
}

UKEY_EXPORT CK_RV C_CancelFunction(CK_SESSION_HANDLE hSession)
{
    return UKEY_CALL(p->CancelFunction(hSession));
}

UKEY_EXPORT CK_RV C_WaitForSlotEvent(CK_FLAGS flags, CK_SLOT_ID_PTR pSlot, CK_VOID_PTR pReserved)
{
    return UKEY_CALL_MAY_BLOCK(p->WaitForSlotEvent(flags, pSlot, pReserved));
}

namespace {

CK_FUNCTION_LIST function_list = {
    {CRYPTOKI_VERSION_MAJOR, CRYPTOKI_VERSION_MINOR},
    C_Initialize, C_Finalize, C_GetInfo, C_GetFunctionList, C_GetSlotList, C_GetSlotInfo, C_GetTokenInfo,
    C_GetMechanismList, C_GetMechanismInfo, C_InitToken, C_InitPIN, C_SetPIN, C_OpenSession, C_CloseSession,
    C_CloseAllSessions, C_GetSessionInfo, C_GetOperationState, C_SetOperationState, C_Login, C_Logout,
    C_CreateObject, C_CopyObject, C_DestroyObject, C_GetObjectSize, C_GetAttributeValue, C_SetAttributeValue,
    C_FindObjectsInit, C_FindObjects, C_FindObjectsFinal, C_EncryptInit, C_Encrypt, C_EncryptUpdate,
    C_EncryptFinal, C_DecryptInit, C_Decrypt, C_DecryptUpdate, C_DecryptFinal, C_DigestInit, C_Digest,
    C_DigestUpdate, C_DigestKey, C_DigestFinal, C_SignInit, C_Sign, C_SignUpdate, C_SignFinal, C_SignRecoverInit,
    C_SignRecover, C_VerifyInit, C_Verify, C_VerifyUpdate, C_VerifyFinal, C_VerifyRecoverInit, C_VerifyRecover,
    C_DigestEncryptUpdate, C_DecryptDigestUpdate, C_SignEncryptUpdate, C_DecryptVerifyUpdate, C_GenerateKey,
    C_GenerateKeyPair, C_WrapKey, C_UnwrapKey, C_DeriveKey, C_SeedRandom, C_GenerateRandom, C_GetFunctionStatus,
    C_CancelFunction, C_WaitForSlotEvent,
};

CK_RV C_UkeyGetPinStatus(CK_SLOT_ID slotID, UKEY_PIN_STATUS* pStatus)
{
    return UKEY_CALL(p->GetPinStatus(slotID, pStatus));
}

CK_RV C_UkeySetPinLimits(CK_SESSION_HANDLE hSession, CK_ULONG userMaxTries, CK_ULONG soMaxTries)
{
    return UKEY_CALL(p->SetPinLimits(hSession, userMaxTries, soMaxTries));
}

CK_RV C_UkeyInitTransportPIN(CK_SESSION_HANDLE hSession, CK_UTF8CHAR_PTR pPin, CK_ULONG ulPinLen)
{
    return UKEY_CALL(p->InitTransportPIN(hSession, pPin, ulPinLen));
}

CK_RV C_UkeyGetSlotBackend(CK_SLOT_ID slotID, UKEY_SLOT_BACKEND* pInfo)
{
    return UKEY_CALL(p->GetSlotBackend(slotID, pInfo));
}

UKEY_FUNCTION_LIST vendor_list = {
    {UKEY_VENDOR_VERSION_MAJOR, UKEY_VENDOR_VERSION_MINOR},
    C_UkeyGetPinStatus,
    C_UkeySetPinLimits,
    C_UkeyInitTransportPIN,
    C_UkeyGetSlotBackend,
};

// PKCS#11 v3.0 interface discovery: the standard interface with the v2.40
// function list (a 3.0 application finds us the 3.0 way and gets what we
// implement), and ukey's vendor interface (include/ukey/vendor.h).
CK_INTERFACE interfaces[] = {
    {reinterpret_cast<CK_CHAR*>(const_cast<char*>(UKEY_INTERFACE_NAME)), &function_list, 0},
    {reinterpret_cast<CK_CHAR*>(const_cast<char*>(UKEY_VENDOR_INTERFACE)), &vendor_list, 0},
};

} // namespace

UKEY_EXPORT CK_RV C_GetInterfaceList(CK_INTERFACE_PTR pInterfacesList, CK_ULONG_PTR pulCount)
{
    if (!pulCount)
        return CKR_ARGUMENTS_BAD;
    constexpr CK_ULONG n = sizeof interfaces / sizeof interfaces[0];
    if (!pInterfacesList) {
        *pulCount = n;
        return CKR_OK;
    }
    if (*pulCount < n) {
        *pulCount = n;
        return CKR_BUFFER_TOO_SMALL;
    }
    std::memcpy(pInterfacesList, interfaces, sizeof interfaces);
    *pulCount = n;
    return CKR_OK;
}

UKEY_EXPORT CK_RV C_GetInterface(CK_UTF8CHAR_PTR pInterfaceName, CK_VERSION_PTR pVersion,
                                 CK_INTERFACE_PTR_PTR ppInterface, CK_FLAGS flags)
{
    if (!ppInterface)
        return CKR_ARGUMENTS_BAD;
    for (CK_INTERFACE& i : interfaces) {
        // Every function list starts with its CK_VERSION.
        const auto* version = static_cast<const CK_VERSION*>(i.pFunctionList);
        if (pInterfaceName && std::strcmp(reinterpret_cast<const char*>(pInterfaceName),
                                          reinterpret_cast<const char*>(i.pInterfaceName)) != 0)
            continue;
        // Without a name, only the standard interface is meant.
        if (!pInterfaceName && &i != &interfaces[0])
            continue;
        if (pVersion && (pVersion->major != version->major || pVersion->minor != version->minor))
            continue;
        if ((flags & i.flags) != flags)
            continue;
        *ppInterface = &i;
        return CKR_OK;
    }
    return CKR_ARGUMENTS_BAD;
}
