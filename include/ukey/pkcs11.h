/* ukey/pkcs11.h: the PKCS#11 definitions ukey builds against.
 *
 * The base is p11-kit's pkcs11.h (PKCS#11 v2.40). The only v3.0 pieces ukey
 * needs are the interface-discovery types of C_GetInterfaceList and
 * C_GetInterface; they are defined here when the system header lacks them.
 */
#ifndef UKEY_PKCS11_H
#define UKEY_PKCS11_H

#include <p11-kit/pkcs11.h>

#ifdef __cplusplus
extern "C" {
#endif

#ifndef CKF_INTERFACE_FORK_SAFE
typedef struct CK_INTERFACE {
    CK_CHAR *pInterfaceName;
    CK_VOID_PTR pFunctionList;
    CK_FLAGS flags;
} CK_INTERFACE;
typedef CK_INTERFACE *CK_INTERFACE_PTR;
typedef CK_INTERFACE_PTR *CK_INTERFACE_PTR_PTR;
#define CKF_INTERFACE_FORK_SAFE 0x00000001UL

CK_RV C_GetInterfaceList(CK_INTERFACE_PTR pInterfacesList, CK_ULONG_PTR pulCount);
CK_RV C_GetInterface(CK_UTF8CHAR_PTR pInterfaceName, CK_VERSION_PTR pVersion,
                     CK_INTERFACE_PTR_PTR ppInterface, CK_FLAGS flags);
typedef CK_RV (*CK_C_GetInterfaceList)(CK_INTERFACE_PTR, CK_ULONG_PTR);
typedef CK_RV (*CK_C_GetInterface)(CK_UTF8CHAR_PTR, CK_VERSION_PTR, CK_INTERFACE_PTR_PTR, CK_FLAGS);
#endif

/* The name every PKCS#11 v3.0 module offers its standard interface under. */
#define UKEY_INTERFACE_NAME "PKCS 11"

#ifdef __cplusplus
}
#endif

#endif
