/* ukey/vendor.h: ukey's vendor-defined PKCS#11 interface.
 *
 * Standard PKCS#11 can only say "a wrong PIN was entered", "one try left" or
 * "locked" (token flags). Users ask how many tries are left, and admins need
 * to set a Key's limits and a transport PIN, so ukey offers a second
 * interface next to the standard one, found the PKCS#11 v3.0 way:
 *
 *     CK_INTERFACE_PTR i;
 *     C_GetInterface((CK_UTF8CHAR_PTR)UKEY_VENDOR_INTERFACE, NULL, &i, 0);
 *     UKEY_FUNCTION_LIST* u = i->pFunctionList;
 *     u->C_UkeyGetPinStatus(slot, &status);
 *
 * Every function follows PKCS#11 conventions: C_Initialize first, CK_RV
 * results, CKR_ARGUMENTS_BAD for NULL pointers, CKR_SLOT_ID_INVALID /
 * CKR_SESSION_HANDLE_INVALID for bad handles. See docs/pin-policy.md.
 */
#ifndef UKEY_VENDOR_H
#define UKEY_VENDOR_H

#include <ukey/pkcs11.h>

#ifdef __cplusplus
extern "C" {
#endif

#define UKEY_VENDOR_INTERFACE "Vendor ukey"
#define UKEY_VENDOR_VERSION_MAJOR 1
#define UKEY_VENDOR_VERSION_MINOR 0

/* UKEY_PIN_STATUS.flags */
#define UKEY_PIN_COUNTED_BY_UKEY 0x1UL /* ukey counts tries (pin_counter = "ukey"); else the token does */
#define UKEY_PIN_USER_MUST_CHANGE 0x2UL /* a transport PIN is set: only C_SetPIN works after login */
#define UKEY_PIN_STATE_DAMAGED 0x4UL /* the Key's PIN state cannot be trusted (state file or policy on
                                         the Key damaged) or kept: treated as locked; the log says why */
#define UKEY_PIN_STATE_UNAVAILABLE 0x8UL /* with UKEY_PIN_STATE_DAMAGED: this user's state cannot be kept
                                             at all (no state folder and none can be created, I/O error) */

typedef struct UKEY_PIN_STATUS {
    /* Tries left and limits. When the token counts itself
     * (no UKEY_PIN_COUNTED_BY_UKEY), only what its flags say is known:
     * 0 (locked), 1 (final try), or CK_UNAVAILABLE_INFORMATION; the limits
     * are CK_UNAVAILABLE_INFORMATION. */
    CK_ULONG userTriesLeft;
    CK_ULONG userMaxTries;
    CK_ULONG soTriesLeft;
    CK_ULONG soMaxTries;
    CK_FLAGS flags;
} UKEY_PIN_STATUS;

/* Which backend a slot belongs to; text fields blank-padded like PKCS#11's. */
typedef struct UKEY_SLOT_BACKEND {
    CK_UTF8CHAR name[32];    /* the [[backend]] name in ukey.conf */
    CK_UTF8CHAR module[256]; /* its module path (truncated if longer) */
    CK_FLAGS flags;          /* UKEY_PIN_COUNTED_BY_UKEY when pin_counter = "ukey" */
} UKEY_SLOT_BACKEND;

typedef struct UKEY_FUNCTION_LIST {
    CK_VERSION version; /* UKEY_VENDOR_VERSION_MAJOR.MINOR */

    /* The PIN counts of the Key in slotID. */
    CK_RV (*C_UkeyGetPinStatus)(CK_SLOT_ID slotID, UKEY_PIN_STATUS *pStatus);

    /* Sets the Key's try limits (1-15 each) and restores both counts to
     * them. Needs a session in which the SO is logged in.
     * CKR_USER_NOT_LOGGED_IN otherwise; CKR_ARGUMENTS_BAD out of range;
     * CKR_FUNCTION_NOT_SUPPORTED when the token counts itself. */
    CK_RV (*C_UkeySetPinLimits)(CK_SESSION_HANDLE hSession, CK_ULONG userMaxTries, CK_ULONG soMaxTries);

    /* Like C_InitPIN, for a transport PIN chosen by the issuer (such as a
     * well-known default): PIN quality rules are not applied, and the Key
     * then reports CKF_USER_PIN_TO_BE_CHANGED until the user changes it with
     * C_SetPIN. Needs an SO session, like C_InitPIN. */
    CK_RV (*C_UkeyInitTransportPIN)(CK_SESSION_HANDLE hSession, CK_UTF8CHAR_PTR pPin, CK_ULONG ulPinLen);

    /* The backend behind slotID. */
    CK_RV (*C_UkeyGetSlotBackend)(CK_SLOT_ID slotID, UKEY_SLOT_BACKEND *pInfo);
} UKEY_FUNCTION_LIST;

/* Service mode (docs/service-mode.md): ukeyd's serving child names the peer
 * it serves before C_Initialize, found with dlsym(UKEY_SERVE_PEER_SYMBOL).
 * The module then shows only the Keys of backends the peer may use, and
 * refuses SO functions unless the peer is an admin. It can only narrow what
 * the calling process sees. CKR_CRYPTOKI_ALREADY_INITIALIZED after
 * C_Initialize; CKR_ARGUMENTS_BAD if another peer was named already. */
#define UKEY_SERVE_PEER_SYMBOL "ukey_serve_peer"
typedef CK_RV (*UKEY_SERVE_PEER)(unsigned long uid, unsigned long gid, long pid);

#ifdef __cplusplus
}
#endif

#endif
