// The PIN functions at the router: arguments checked, the session or slot
// resolved, the call sent down the backend's stack, where the PIN policy
// (layer_pin_policy.h) and the PIN rules (layer_pin_quality.cpp) are.
#include "token/proxy.h"

#include "token/pin_store.h"

namespace ukey {

namespace {
// No token takes PINs this long; a larger length is a caller's bug that must
// not make a backend read past the buffer.
constexpr CK_ULONG max_pin_len = 1024;

// The argument checks of a function taking one PIN.
CK_RV pin_args(CK_UTF8CHAR_PTR pin, CK_ULONG len)
{
    if (!pin && len)
        return CKR_ARGUMENTS_BAD;
    return len > max_pin_len ? CKR_PIN_LEN_RANGE : CKR_OK;
}
} // namespace

CK_RV Proxy::Login(CK_SESSION_HANDLE hSession, CK_USER_TYPE userType, CK_UTF8CHAR_PTR pPin, CK_ULONG ulPinLen)
{
    if (CK_RV rv = pin_args(pPin, ulPinLen); rv != CKR_OK)
        return rv;
    return forward(hSession, &Stack::Login, userType, pPin, ulPinLen);
}

CK_RV Proxy::Logout(CK_SESSION_HANDLE hSession)
{
    return forward(hSession, &Stack::Logout);
}

CK_RV Proxy::SetPIN(CK_SESSION_HANDLE hSession, CK_UTF8CHAR_PTR pOldPin, CK_ULONG ulOldLen, CK_UTF8CHAR_PTR pNewPin,
                    CK_ULONG ulNewLen)
{
    if ((!pOldPin && ulOldLen) || (!pNewPin && ulNewLen))
        return CKR_ARGUMENTS_BAD;
    if (ulOldLen > max_pin_len || ulNewLen > max_pin_len)
        return CKR_PIN_LEN_RANGE;
    return forward(hSession, &Stack::SetPIN, pOldPin, ulOldLen, pNewPin, ulNewLen);
}

CK_RV Proxy::InitPIN(CK_SESSION_HANDLE hSession, CK_UTF8CHAR_PTR pPin, CK_ULONG ulPinLen)
{
    if (CK_RV rv = pin_args(pPin, ulPinLen); rv != CKR_OK)
        return rv;
    return forward(hSession, &Stack::InitPIN, pPin, ulPinLen);
}

CK_RV Proxy::UkeyInitTransportPIN(CK_SESSION_HANDLE hSession, CK_UTF8CHAR_PTR pPin, CK_ULONG ulPinLen)
{
    if (CK_RV rv = pin_args(pPin, ulPinLen); rv != CKR_OK)
        return rv;
    return forward(hSession, &Stack::UkeyInitTransportPIN, pPin, ulPinLen);
}

CK_RV Proxy::InitToken(CK_SLOT_ID slotID, CK_UTF8CHAR_PTR pPin, CK_ULONG ulPinLen, CK_UTF8CHAR_PTR pLabel)
{
    if (!pLabel)
        return CKR_ARGUMENTS_BAD;
    if (CK_RV rv = pin_args(pPin, ulPinLen); rv != CKR_OK)
        return rv;
    return on_slot(slotID, true, [&](const SlotEntry& e) {
        CK_RV rv = stack(e.backend).InitToken(e, pPin, ulPinLen, pLabel);
        if (rv == CKR_OK)
            refresh_slots(); // the token may have a new identity now
        return rv;
    });
}

CK_RV Proxy::UkeyGetPinStatus(CK_SLOT_ID slotID, UKEY_PIN_STATUS* pStatus)
{
    if (!pStatus)
        return CKR_ARGUMENTS_BAD;
    return slot_forward(slotID, true, &Stack::UkeyGetPinStatus, pStatus);
}

CK_RV Proxy::UkeySetPinLimits(CK_SESSION_HANDLE hSession, CK_ULONG userMaxTries, CK_ULONG soMaxTries)
{
    if (userMaxTries < min_tries || userMaxTries > max_tries || soMaxTries < min_tries || soMaxTries > max_tries)
        return CKR_ARGUMENTS_BAD;
    return forward(hSession, &Stack::UkeySetPinLimits, userMaxTries, soMaxTries);
}

} // namespace ukey
