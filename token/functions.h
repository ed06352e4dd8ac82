// The PKCS#11 functions, written once (the pkcs11-provider idea: generate,
// never copy by hand). Everything that lists them expands these rows: the
// exported C_* stubs and the function lists (p11/main.cpp), the layer table
// (token/layer.h), the router's methods (token/proxy.h) and the robustness
// test's coverage table.
//
// A row: X(stub, route, name, (params after the first), (their names))
//   stub   how p11/main.cpp exports it:
//            call   generated: C_<name> runs the active stack's entry
//            block  the same, without the fork guard (the call may block)
//            own    written by hand in p11/main.cpp
//   route  what the router resolves from the first argument before the call
//          goes down a backend's stack:
//            session  CK_SESSION_HANDLE hSession -> the session's route
//            slot     CK_SLOT_ID slotID          -> the slot's entry
//            none     not routed to one backend (the router answers it)
//   params the parameters after the first for session/slot rows, all of
//          them for none rows; () when there are none
//
// Rows of PKCS11_FUNCTIONS are in CK_FUNCTION_LIST order (the function list
// is expanded from them). UKEY_VENDOR_FUNCTIONS are ukey's own interface
// (include/ukey/vendor.h), in UKEY_FUNCTION_LIST order.
#pragma once

#define UKEY_PKCS11_FUNCTIONS(X)                                                                                   \
    X(own, none, Initialize, (CK_VOID_PTR pInitArgs), (pInitArgs))                                                 \
    X(own, none, Finalize, (CK_VOID_PTR pReserved), (pReserved))                                                   \
    X(call, none, GetInfo, (CK_INFO_PTR pInfo), (pInfo))                                                           \
    X(own, none, GetFunctionList, (CK_FUNCTION_LIST_PTR_PTR ppFunctionList), (ppFunctionList))                     \
    X(call, none, GetSlotList, (CK_BBOOL tokenPresent, CK_SLOT_ID_PTR pSlotList, CK_ULONG_PTR pulCount),           \
      (tokenPresent, pSlotList, pulCount))                                                                         \
    X(call, slot, GetSlotInfo, (CK_SLOT_INFO_PTR pInfo), (pInfo))                                                  \
    X(call, slot, GetTokenInfo, (CK_TOKEN_INFO_PTR pInfo), (pInfo))                                                \
    X(call, slot, GetMechanismList, (CK_MECHANISM_TYPE_PTR pMechanismList, CK_ULONG_PTR pulCount),                 \
      (pMechanismList, pulCount))                                                                                  \
    X(call, slot, GetMechanismInfo, (CK_MECHANISM_TYPE type, CK_MECHANISM_INFO_PTR pInfo), (type, pInfo))          \
    X(call, slot, InitToken, (CK_UTF8CHAR_PTR pPin, CK_ULONG ulPinLen, CK_UTF8CHAR_PTR pLabel),                    \
      (pPin, ulPinLen, pLabel))                                                                                    \
    X(call, session, InitPIN, (CK_UTF8CHAR_PTR pPin, CK_ULONG ulPinLen), (pPin, ulPinLen))                         \
    X(call, session, SetPIN,                                                                                       \
      (CK_UTF8CHAR_PTR pOldPin, CK_ULONG ulOldLen, CK_UTF8CHAR_PTR pNewPin, CK_ULONG ulNewLen),                    \
      (pOldPin, ulOldLen, pNewPin, ulNewLen))                                                                      \
    X(call, slot, OpenSession,                                                                                     \
      (CK_FLAGS flags, CK_VOID_PTR pApplication, CK_NOTIFY Notify, CK_SESSION_HANDLE_PTR phSession),               \
      (flags, pApplication, Notify, phSession))                                                                    \
    X(call, session, CloseSession, (), ())                                                                         \
    X(call, slot, CloseAllSessions, (), ())                                                                        \
    X(call, session, GetSessionInfo, (CK_SESSION_INFO_PTR pInfo), (pInfo))                                         \
    X(call, session, GetOperationState, (CK_BYTE_PTR pOperationState, CK_ULONG_PTR pulOperationStateLen),          \
      (pOperationState, pulOperationStateLen))                                                                     \
    X(call, session, SetOperationState,                                                                            \
      (CK_BYTE_PTR pOperationState, CK_ULONG ulOperationStateLen, CK_OBJECT_HANDLE hEncryptionKey,                 \
       CK_OBJECT_HANDLE hAuthenticationKey),                                                                       \
      (pOperationState, ulOperationStateLen, hEncryptionKey, hAuthenticationKey))                                  \
    X(call, session, Login, (CK_USER_TYPE userType, CK_UTF8CHAR_PTR pPin, CK_ULONG ulPinLen),                      \
      (userType, pPin, ulPinLen))                                                                                  \
    X(call, session, Logout, (), ())                                                                               \
    X(call, session, CreateObject, (CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount, CK_OBJECT_HANDLE_PTR phObject),  \
      (pTemplate, ulCount, phObject))                                                                              \
    X(call, session, CopyObject,                                                                                   \
      (CK_OBJECT_HANDLE hObject, CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount, CK_OBJECT_HANDLE_PTR phNewObject),  \
      (hObject, pTemplate, ulCount, phNewObject))                                                                  \
    X(call, session, DestroyObject, (CK_OBJECT_HANDLE hObject), (hObject))                                         \
    X(call, session, GetObjectSize, (CK_OBJECT_HANDLE hObject, CK_ULONG_PTR pulSize), (hObject, pulSize))          \
    X(call, session, GetAttributeValue, (CK_OBJECT_HANDLE hObject, CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount),  \
      (hObject, pTemplate, ulCount))                                                                               \
    X(call, session, SetAttributeValue, (CK_OBJECT_HANDLE hObject, CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount),  \
      (hObject, pTemplate, ulCount))                                                                               \
    X(call, session, FindObjectsInit, (CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount), (pTemplate, ulCount))        \
    X(call, session, FindObjects,                                                                                  \
      (CK_OBJECT_HANDLE_PTR phObject, CK_ULONG ulMaxObjectCount, CK_ULONG_PTR pulObjectCount),                     \
      (phObject, ulMaxObjectCount, pulObjectCount))                                                                \
    X(call, session, FindObjectsFinal, (), ())                                                                     \
    X(call, session, EncryptInit, (CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey), (pMechanism, hKey))        \
    X(call, session, Encrypt,                                                                                      \
      (CK_BYTE_PTR pData, CK_ULONG ulDataLen, CK_BYTE_PTR pEncryptedData, CK_ULONG_PTR pulEncryptedDataLen),       \
      (pData, ulDataLen, pEncryptedData, pulEncryptedDataLen))                                                     \
    X(call, session, EncryptUpdate,                                                                                \
      (CK_BYTE_PTR pPart, CK_ULONG ulPartLen, CK_BYTE_PTR pEncryptedPart, CK_ULONG_PTR pulEncryptedPartLen),       \
      (pPart, ulPartLen, pEncryptedPart, pulEncryptedPartLen))                                                     \
    X(call, session, EncryptFinal, (CK_BYTE_PTR pLastEncryptedPart, CK_ULONG_PTR pulLastEncryptedPartLen),        \
      (pLastEncryptedPart, pulLastEncryptedPartLen))                                                               \
    X(call, session, DecryptInit, (CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey), (pMechanism, hKey))        \
    X(call, session, Decrypt,                                                                                      \
      (CK_BYTE_PTR pEncryptedData, CK_ULONG ulEncryptedDataLen, CK_BYTE_PTR pData, CK_ULONG_PTR pulDataLen),       \
      (pEncryptedData, ulEncryptedDataLen, pData, pulDataLen))                                                     \
    X(call, session, DecryptUpdate,                                                                                \
      (CK_BYTE_PTR pEncryptedPart, CK_ULONG ulEncryptedPartLen, CK_BYTE_PTR pPart, CK_ULONG_PTR pulPartLen),       \
      (pEncryptedPart, ulEncryptedPartLen, pPart, pulPartLen))                                                     \
    X(call, session, DecryptFinal, (CK_BYTE_PTR pLastPart, CK_ULONG_PTR pulLastPartLen),                           \
      (pLastPart, pulLastPartLen))                                                                                 \
    X(call, session, DigestInit, (CK_MECHANISM_PTR pMechanism), (pMechanism))                                      \
    X(call, session, Digest,                                                                                       \
      (CK_BYTE_PTR pData, CK_ULONG ulDataLen, CK_BYTE_PTR pDigest, CK_ULONG_PTR pulDigestLen),                     \
      (pData, ulDataLen, pDigest, pulDigestLen))                                                                   \
    X(call, session, DigestUpdate, (CK_BYTE_PTR pPart, CK_ULONG ulPartLen), (pPart, ulPartLen))                    \
    X(call, session, DigestKey, (CK_OBJECT_HANDLE hKey), (hKey))                                                   \
    X(call, session, DigestFinal, (CK_BYTE_PTR pDigest, CK_ULONG_PTR pulDigestLen), (pDigest, pulDigestLen))       \
    X(call, session, SignInit, (CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey), (pMechanism, hKey))           \
    X(call, session, Sign,                                                                                         \
      (CK_BYTE_PTR pData, CK_ULONG ulDataLen, CK_BYTE_PTR pSignature, CK_ULONG_PTR pulSignatureLen),               \
      (pData, ulDataLen, pSignature, pulSignatureLen))                                                             \
    X(call, session, SignUpdate, (CK_BYTE_PTR pPart, CK_ULONG ulPartLen), (pPart, ulPartLen))                      \
    X(call, session, SignFinal, (CK_BYTE_PTR pSignature, CK_ULONG_PTR pulSignatureLen),                            \
      (pSignature, pulSignatureLen))                                                                               \
    X(call, session, SignRecoverInit, (CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey), (pMechanism, hKey))    \
    X(call, session, SignRecover,                                                                                  \
      (CK_BYTE_PTR pData, CK_ULONG ulDataLen, CK_BYTE_PTR pSignature, CK_ULONG_PTR pulSignatureLen),               \
      (pData, ulDataLen, pSignature, pulSignatureLen))                                                             \
    X(call, session, VerifyInit, (CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey), (pMechanism, hKey))         \
    X(call, session, Verify,                                                                                       \
      (CK_BYTE_PTR pData, CK_ULONG ulDataLen, CK_BYTE_PTR pSignature, CK_ULONG ulSignatureLen),                    \
      (pData, ulDataLen, pSignature, ulSignatureLen))                                                              \
    X(call, session, VerifyUpdate, (CK_BYTE_PTR pPart, CK_ULONG ulPartLen), (pPart, ulPartLen))                    \
    X(call, session, VerifyFinal, (CK_BYTE_PTR pSignature, CK_ULONG ulSignatureLen), (pSignature, ulSignatureLen)) \
    X(call, session, VerifyRecoverInit, (CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey), (pMechanism, hKey))  \
    X(call, session, VerifyRecover,                                                                                \
      (CK_BYTE_PTR pSignature, CK_ULONG ulSignatureLen, CK_BYTE_PTR pData, CK_ULONG_PTR pulDataLen),               \
      (pSignature, ulSignatureLen, pData, pulDataLen))                                                             \
    X(call, session, DigestEncryptUpdate,                                                                          \
      (CK_BYTE_PTR pPart, CK_ULONG ulPartLen, CK_BYTE_PTR pEncryptedPart, CK_ULONG_PTR pulEncryptedPartLen),       \
      (pPart, ulPartLen, pEncryptedPart, pulEncryptedPartLen))                                                     \
    X(call, session, DecryptDigestUpdate,                                                                          \
      (CK_BYTE_PTR pEncryptedPart, CK_ULONG ulEncryptedPartLen, CK_BYTE_PTR pPart, CK_ULONG_PTR pulPartLen),       \
      (pEncryptedPart, ulEncryptedPartLen, pPart, pulPartLen))                                                     \
    X(call, session, SignEncryptUpdate,                                                                            \
      (CK_BYTE_PTR pPart, CK_ULONG ulPartLen, CK_BYTE_PTR pEncryptedPart, CK_ULONG_PTR pulEncryptedPartLen),       \
      (pPart, ulPartLen, pEncryptedPart, pulEncryptedPartLen))                                                     \
    X(call, session, DecryptVerifyUpdate,                                                                          \
      (CK_BYTE_PTR pEncryptedPart, CK_ULONG ulEncryptedPartLen, CK_BYTE_PTR pPart, CK_ULONG_PTR pulPartLen),       \
      (pEncryptedPart, ulEncryptedPartLen, pPart, pulPartLen))                                                     \
    X(call, session, GenerateKey,                                                                                  \
      (CK_MECHANISM_PTR pMechanism, CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount, CK_OBJECT_HANDLE_PTR phKey),     \
      (pMechanism, pTemplate, ulCount, phKey))                                                                     \
    X(call, session, GenerateKeyPair,                                                                              \
      (CK_MECHANISM_PTR pMechanism, CK_ATTRIBUTE_PTR pPublicKeyTemplate, CK_ULONG ulPublicKeyAttributeCount,       \
       CK_ATTRIBUTE_PTR pPrivateKeyTemplate, CK_ULONG ulPrivateKeyAttributeCount,                                  \
       CK_OBJECT_HANDLE_PTR phPublicKey, CK_OBJECT_HANDLE_PTR phPrivateKey),                                       \
      (pMechanism, pPublicKeyTemplate, ulPublicKeyAttributeCount, pPrivateKeyTemplate,                             \
       ulPrivateKeyAttributeCount, phPublicKey, phPrivateKey))                                                     \
    X(call, session, WrapKey,                                                                                      \
      (CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hWrappingKey, CK_OBJECT_HANDLE hKey,                          \
       CK_BYTE_PTR pWrappedKey, CK_ULONG_PTR pulWrappedKeyLen),                                                    \
      (pMechanism, hWrappingKey, hKey, pWrappedKey, pulWrappedKeyLen))                                             \
    X(call, session, UnwrapKey,                                                                                    \
      (CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hUnwrappingKey, CK_BYTE_PTR pWrappedKey,                      \
       CK_ULONG ulWrappedKeyLen, CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulAttributeCount,                            \
       CK_OBJECT_HANDLE_PTR phKey),                                                                                \
      (pMechanism, hUnwrappingKey, pWrappedKey, ulWrappedKeyLen, pTemplate, ulAttributeCount, phKey))              \
    X(call, session, DeriveKey,                                                                                    \
      (CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hBaseKey, CK_ATTRIBUTE_PTR pTemplate,                         \
       CK_ULONG ulAttributeCount, CK_OBJECT_HANDLE_PTR phKey),                                                     \
      (pMechanism, hBaseKey, pTemplate, ulAttributeCount, phKey))                                                  \
    X(call, session, SeedRandom, (CK_BYTE_PTR pSeed, CK_ULONG ulSeedLen), (pSeed, ulSeedLen))                      \
    X(call, session, GenerateRandom, (CK_BYTE_PTR RandomData, CK_ULONG ulRandomLen), (RandomData, ulRandomLen))    \
    X(call, session, GetFunctionStatus, (), ())                                                                    \
    X(call, session, CancelFunction, (), ())                                                                       \
    X(block, none, WaitForSlotEvent, (CK_FLAGS flags, CK_SLOT_ID_PTR pSlot, CK_VOID_PTR pReserved),                \
      (flags, pSlot, pReserved))

#define UKEY_VENDOR_FUNCTIONS(X)                                                                                   \
    X(call, slot, UkeyGetPinStatus, (UKEY_PIN_STATUS * pStatus), (pStatus))                                        \
    X(call, session, UkeySetPinLimits, (CK_ULONG userMaxTries, CK_ULONG soMaxTries), (userMaxTries, soMaxTries))   \
    X(call, session, UkeyInitTransportPIN, (CK_UTF8CHAR_PTR pPin, CK_ULONG ulPinLen), (pPin, ulPinLen))            \
    X(call, slot, UkeyGetSlotBackend, (UKEY_SLOT_BACKEND * pInfo), (pInfo))

// Every function the module answers, standard and vendor.
#define UKEY_ALL_FUNCTIONS(X) UKEY_PKCS11_FUNCTIONS(X) UKEY_VENDOR_FUNCTIONS(X)

// Helpers for expanding the rows.
#define UKEY_UNPAREN(...) __VA_ARGS__
// The full parameter list of a row as the application calls it.
#define UKEY_FIRST_PARAM_session CK_SESSION_HANDLE hSession
#define UKEY_FIRST_PARAM_slot CK_SLOT_ID slotID
#define UKEY_FIRST_ARG_session hSession
#define UKEY_FIRST_ARG_slot slotID
#define UKEY_JOIN_(first, ...) (first __VA_OPT__(, ) __VA_ARGS__)
#define UKEY_JOIN(first, list) UKEY_JOIN_(first, UKEY_UNPAREN list)
#define UKEY_APP_PARAMS_session(params) UKEY_JOIN(UKEY_FIRST_PARAM_session, params)
#define UKEY_APP_PARAMS_slot(params) UKEY_JOIN(UKEY_FIRST_PARAM_slot, params)
#define UKEY_APP_PARAMS_none(params) params
#define UKEY_APP_ARGS_session(args) UKEY_JOIN(UKEY_FIRST_ARG_session, args)
#define UKEY_APP_ARGS_slot(args) UKEY_JOIN(UKEY_FIRST_ARG_slot, args)
#define UKEY_APP_ARGS_none(args) args
// UKEY_APP_PARAMS(route, params): "(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pData, ...)"
#define UKEY_APP_PARAMS(route, params) UKEY_APP_PARAMS_##route(params)
#define UKEY_APP_ARGS(route, args) UKEY_APP_ARGS_##route(args)
