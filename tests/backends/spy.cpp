// ukey-test-spy: a TEST-ONLY PKCS#11 module that forwards every call to the
// module named by $SPY_MODULE and records each C_Login in the file named by
// $SPY_LOG (see README.md and spy.h).
//
// C_GetFunctionList dlopen()s $SPY_MODULE once, copies its function list and
// replaces C_Login (and C_GetFunctionList) in the copy. The spy's C_Login
// appends "login <userType>\n" to $SPY_LOG *before* it forwards the call and
// "rv <hex CK_RV>\n" after the real module answered, each line with a single
// write() on an O_APPEND descriptor, so lines of concurrent threads and
// processes never interleave. A test counts the "login" lines to know how
// many PINs reached the real backend. Without $SPY_LOG nothing is written.
// With $SPY_EXIT_IN_LOGIN=1 the process _exit()s (status 86) right after the
// "login" line, before forwarding: a process that dies the moment the PIN
// left ukey.
#include "spy.h"

#include <ukey/pkcs11.h>

#include <dlfcn.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <csignal>
#include <cstring>
#include <mutex>

#define SPY_EXPORT extern "C" __attribute__((visibility("default")))

namespace {

std::once_flag g_once;
CK_RV g_load_rv = CKR_GENERAL_ERROR;
CK_FUNCTION_LIST* g_real = nullptr;
CK_FUNCTION_LIST g_list{};

void log_line(const char* text, int len)
{
    const char* path = std::getenv(SPY_LOG_ENV);
    if (!path || !*path || len <= 0)
        return;
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return;
    ssize_t n = write(fd, text, static_cast<size_t>(len));
    (void)n;
    close(fd);
}

CK_RV spy_Login(CK_SESSION_HANDLE hSession, CK_USER_TYPE userType, CK_UTF8CHAR_PTR pPin, CK_ULONG ulPinLen)
{
    char line[64];
    log_line(line, std::snprintf(line, sizeof line, "login %lu\n", static_cast<unsigned long>(userType)));
    if (const char* die = std::getenv(SPY_EXIT_IN_LOGIN_ENV); die && std::strcmp(die, "1") == 0)
        _exit(SPY_EXIT_IN_LOGIN_CODE); // the PIN has left ukey; the process dies before any answer
    if (const char* stop = std::getenv(SPY_STOP_IN_LOGIN_ENV); stop && std::strcmp(stop, "1") == 0)
        raise(SIGSTOP); // stuck mid-attempt, holding ukey's attempt lock
    CK_RV rv = g_real->C_Login(hSession, userType, pPin, ulPinLen);
    log_line(line, std::snprintf(line, sizeof line, "rv %lx\n", static_cast<unsigned long>(rv)));
    return rv;
}

CK_RV spy_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR ppFunctionList);

void load()
{
    const char* path = std::getenv(SPY_MODULE_ENV);
    if (!path || !*path) {
        std::fprintf(stderr, "ukey-test-spy: set %s to the PKCS#11 module to forward to\n", SPY_MODULE_ENV);
        return;
    }
    void* dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!dl) {
        const char* why = dlerror();
        std::fprintf(stderr, "ukey-test-spy: cannot load %s: %s\n", path, why ? why : "?");
        return;
    }
    // Never dlclose()d: the copied function list points into it.
    auto get = reinterpret_cast<CK_C_GetFunctionList>(dlsym(dl, "C_GetFunctionList"));
    if (!get) {
        std::fprintf(stderr, "ukey-test-spy: %s has no C_GetFunctionList\n", path);
        return;
    }
    CK_RV rv = get(&g_real);
    if (rv != CKR_OK || !g_real) {
        g_load_rv = rv == CKR_OK ? CKR_GENERAL_ERROR : rv;
        return;
    }
    g_list = *g_real;
    g_list.C_GetFunctionList = spy_GetFunctionList;
    g_list.C_Login = g_real->C_Login ? spy_Login : nullptr;
    g_load_rv = CKR_OK;
}

CK_RV spy_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR ppFunctionList)
{
    if (!ppFunctionList)
        return CKR_ARGUMENTS_BAD;
    std::call_once(g_once, load);
    if (g_load_rv != CKR_OK)
        return g_load_rv;
    *ppFunctionList = &g_list;
    return CKR_OK;
}

} // namespace

SPY_EXPORT CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR ppFunctionList)
{
    return spy_GetFunctionList(ppFunctionList);
}
