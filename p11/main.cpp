// The C boundary of libukey-pkcs11.so. Every entry point checks that the
// module is initialised in this process, calls into ukey::Proxy, and turns
// any C++ exception into a CKR_* code: nothing but a CK_RV crosses the ABI.
#include "token/fork.h"
#include "token/functions.h"
#include "token/peer_access.h"
#include "token/proxy.h"

#include <ukey/pkcs11.h>
#include <ukey/vendor.h>

#include <cstddef>
#include <cstring>
#include <iterator>
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

// Every other function, generated from token/functions.h: the active
// Proxy's method of the same name, under the guard.
#define UKEY_STUB_call(name, route, params, args)                                                                 \
    UKEY_EXPORT CK_RV C_##name UKEY_APP_PARAMS(route, params) { return UKEY_CALL(p->name UKEY_APP_ARGS(route, args)); }
#define UKEY_STUB_block(name, route, params, args)                                                                \
    UKEY_EXPORT CK_RV C_##name UKEY_APP_PARAMS(route, params)                                                      \
    {                                                                                                              \
        return UKEY_CALL_MAY_BLOCK(p->name UKEY_APP_ARGS(route, args));                                            \
    }
#define UKEY_STUB_own(name, route, params, args)
#define UKEY_X(stub, route, name, params, args) UKEY_STUB_##stub(name, route, params, args)
UKEY_PKCS11_FUNCTIONS(UKEY_X)
#undef UKEY_X

UKEY_EXPORT CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR ppFunctionList)
{
    if (!ppFunctionList)
        return CKR_ARGUMENTS_BAD;
    *ppFunctionList = &function_list;
    return CKR_OK;
}

namespace {

// The rows are in CK_FUNCTION_LIST order, or this does not compile.
#define UKEY_X(stub, route, name, params, args) offsetof(CK_FUNCTION_LIST, C_##name),
constexpr std::size_t row_offsets[] = {UKEY_PKCS11_FUNCTIONS(UKEY_X)};
#undef UKEY_X
constexpr bool rows_in_struct_order()
{
    for (std::size_t i = 0; i < std::size(row_offsets); ++i)
        if (row_offsets[i] != offsetof(CK_FUNCTION_LIST, C_Initialize) + i * sizeof(void*))
            return false;
    return sizeof(CK_FUNCTION_LIST) == offsetof(CK_FUNCTION_LIST, C_Initialize) + std::size(row_offsets) * sizeof(void*);
}
static_assert(rows_in_struct_order(), "token/functions.h: rows not in CK_FUNCTION_LIST order");

#define UKEY_X(stub, route, name, params, args) C_##name,
CK_FUNCTION_LIST function_list = {
    {CRYPTOKI_VERSION_MAJOR, CRYPTOKI_VERSION_MINOR},
    UKEY_PKCS11_FUNCTIONS(UKEY_X)
};

// ukey's vendor functions: reached through C_GetInterface only, not exported.
#define UKEY_VENDOR_STUB(stub, route, name, params, args)                                                          \
    CK_RV C_##name UKEY_APP_PARAMS(route, params) { return UKEY_CALL(p->name UKEY_APP_ARGS(route, args)); }
UKEY_VENDOR_FUNCTIONS(UKEY_VENDOR_STUB)
UKEY_FUNCTION_LIST vendor_list = {
    {UKEY_VENDOR_VERSION_MAJOR, UKEY_VENDOR_VERSION_MINOR},
    UKEY_VENDOR_FUNCTIONS(UKEY_X)
};
#undef UKEY_X

// PKCS#11 v3.0 interface discovery: the standard interface with the v2.40
// function list (a 3.0 application finds us the 3.0 way and gets what we
// implement), and ukey's vendor interface (include/ukey/vendor.h).
CK_INTERFACE interfaces[] = {
    {reinterpret_cast<CK_CHAR*>(const_cast<char*>(UKEY_INTERFACE_NAME)), &function_list, 0},
    {reinterpret_cast<CK_CHAR*>(const_cast<char*>(UKEY_VENDOR_INTERFACE)), &vendor_list, 0},
};

} // namespace

// Service mode: whom this process serves (ukey/vendor.h).
UKEY_EXPORT CK_RV ukey_serve_peer(unsigned long uid, unsigned long gid, long pid)
{
    return guard([&]() -> CK_RV {
        if (Proxy::active())
            return CKR_CRYPTOKI_ALREADY_INITIALIZED;
        if (uid > 0xfffffffeUL || gid > 0xfffffffeUL || pid <= 0)
            return CKR_ARGUMENTS_BAD;
        return ukey::set_served_peer(ukey::Peer{uid_t(uid), gid_t(gid), pid_t(pid)}) ? CKR_OK : CKR_ARGUMENTS_BAD;
    });
}

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
