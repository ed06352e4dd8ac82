// svcclient: an application of service mode, for tests/service/*.sh. Loads
// MODULE (p11-kit-client.so, which reaches ukeyd through
// $P11_KIT_SERVER_ADDRESS; or any PKCS#11 module) and does one thing:
//
//   svcclient MODULE labels             the labels of the initialised tokens, one a line
//   svcclient MODULE poll|wait          C_WaitForSlotEvent's CKR_* name (CKF_DONT_BLOCK / 0)
//   svcclient MODULE login LABEL user|so C_Login with the PIN on stdin's first line;
//                                       prints the CKR_* name
//   svcclient MODULE logins LABEL N [GATE]
//                                       opens N sessions; then (once the file GATE
//                                       exists, after printing "ready") N threads log in
//                                       with the PIN on stdin at once; one CKR_* name a
//                                       line (with the function's name if C_OpenSession
//                                       failed)
//   svcclient MODULE unlock LABEL       SO login (stdin line 1), C_InitPIN with line 2;
//                                       prints the CKR_* name of the first failing call
//   svcclient MODULE initoken LABEL     C_InitToken with the SO PIN on stdin
//   svcclient MODULE flags LABEL        "locked", "final-try", "count-low" or "ok"
//   svcclient MODULE use LABEL          logs in with the PIN on stdin, then makes a private
//                                       session object: both CKR_* names on one line
//   svcclient MODULE hold LABEL         opens a session, prints "ready", logs in with
//                                       stdin's line when it comes (for a kill mid-login)
//
// Exit 0 when the calls could be made (whatever they answered), 2 on usage
// or load errors, 3 when LABEL is not there.
#include <ukey/pkcs11.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include <dlfcn.h>
#include <sys/stat.h>

namespace {

CK_FUNCTION_LIST_PTR f = nullptr;

std::string name(CK_RV rv)
{
    switch (rv) {
    case CKR_OK: return "CKR_OK";
    case CKR_PIN_INCORRECT: return "CKR_PIN_INCORRECT";
    case CKR_PIN_LOCKED: return "CKR_PIN_LOCKED";
    case CKR_USER_TYPE_INVALID: return "CKR_USER_TYPE_INVALID";
    case CKR_TOKEN_WRITE_PROTECTED: return "CKR_TOKEN_WRITE_PROTECTED";
    case CKR_USER_ALREADY_LOGGED_IN: return "CKR_USER_ALREADY_LOGGED_IN";
    case CKR_USER_ANOTHER_ALREADY_LOGGED_IN: return "CKR_USER_ANOTHER_ALREADY_LOGGED_IN";
    case CKR_DEVICE_ERROR: return "CKR_DEVICE_ERROR";
    case CKR_GENERAL_ERROR: return "CKR_GENERAL_ERROR";
    case CKR_FUNCTION_FAILED: return "CKR_FUNCTION_FAILED";
    case CKR_NO_EVENT: return "CKR_NO_EVENT";
    case CKR_FUNCTION_NOT_SUPPORTED: return "CKR_FUNCTION_NOT_SUPPORTED";
    case CKR_PIN_EXPIRED: return "CKR_PIN_EXPIRED";
    default: {
        char b[40];
        snprintf(b, sizeof b, "CKR_0x%lx", rv);
        return b;
    }
    }
}

std::string label_of(const CK_TOKEN_INFO& t)
{
    std::string s(reinterpret_cast<const char*>(t.label), sizeof t.label);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\0'))
        s.pop_back();
    return s;
}

std::vector<CK_SLOT_ID> slots()
{
    CK_ULONG n = 0;
    if (f->C_GetSlotList(CK_TRUE, nullptr, &n) != CKR_OK)
        return {};
    std::vector<CK_SLOT_ID> v(n);
    if (f->C_GetSlotList(CK_TRUE, v.data(), &n) != CKR_OK)
        return {};
    v.resize(n);
    return v;
}

bool find(const std::string& label, CK_SLOT_ID& out, CK_TOKEN_INFO* info = nullptr)
{
    for (CK_SLOT_ID s : slots()) {
        CK_TOKEN_INFO t;
        if (f->C_GetTokenInfo(s, &t) == CKR_OK && label_of(t) == label) {
            out = s;
            if (info)
                *info = t;
            return true;
        }
    }
    return false;
}

std::string line()
{
    std::string s;
    std::getline(std::cin, s);
    return s;
}

CK_RV login(CK_SESSION_HANDLE h, CK_USER_TYPE who, std::string pin)
{
    CK_RV rv = f->C_Login(h, who, reinterpret_cast<CK_UTF8CHAR_PTR>(pin.data()), pin.size());
    std::fill(pin.begin(), pin.end(), '\0');
    return rv;
}

int usage()
{
    std::cerr << "usage: svcclient MODULE labels|poll|wait|login|logins|use|unlock|initoken|flags|hold [LABEL [ARG]]\n";
    return 2;
}

} // namespace

int main(int argc, char** argv)
{
    if (argc < 3)
        return usage();
    void* dl = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    auto get = dl ? reinterpret_cast<CK_C_GetFunctionList>(dlsym(dl, "C_GetFunctionList")) : nullptr;
    if (!get || get(&f) != CKR_OK) {
        std::cerr << "svcclient: cannot load " << argv[1] << ": " << (dl ? "no C_GetFunctionList" : dlerror()) << "\n";
        return 2;
    }
    CK_C_INITIALIZE_ARGS init{};
    init.flags = CKF_OS_LOCKING_OK;
    if (CK_RV rv = f->C_Initialize(&init); rv != CKR_OK) {
        std::cout << "C_Initialize " << name(rv) << "\n";
        return 2;
    }
    const std::string cmd = argv[2];
    if (cmd == "labels") {
        for (CK_SLOT_ID s : slots()) {
            CK_TOKEN_INFO t;
            if (f->C_GetTokenInfo(s, &t) == CKR_OK && (t.flags & CKF_TOKEN_INITIALIZED))
                std::cout << label_of(t) << "\n";
        }
        f->C_Finalize(nullptr);
        return 0;
    }
    if (cmd == "poll" || cmd == "wait") {
        CK_SLOT_ID s = 0;
        std::cout << name(f->C_WaitForSlotEvent(cmd == "poll" ? CKF_DONT_BLOCK : 0, &s, nullptr)) << "\n";
        f->C_Finalize(nullptr);
        return 0;
    }
    if (argc < 4)
        return usage();
    CK_SLOT_ID slot = 0;
    CK_TOKEN_INFO info;
    if (!find(argv[3], slot, &info)) {
        std::cout << "no-such-token\n";
        return 3;
    }
    const CK_FLAGS rw = CKF_SERIAL_SESSION | CKF_RW_SESSION;
    CK_SESSION_HANDLE h = 0;
    if (cmd == "flags") {
        std::cout << ((info.flags & CKF_USER_PIN_LOCKED)       ? "locked"
                      : (info.flags & CKF_USER_PIN_FINAL_TRY)  ? "final-try"
                      : (info.flags & CKF_USER_PIN_COUNT_LOW) ? "count-low"
                                                               : "ok")
                  << "\n";
    } else if (cmd == "login" && argc == 5) {
        CK_RV rv = f->C_OpenSession(slot, rw, nullptr, nullptr, &h);
        if (rv == CKR_OK)
            rv = login(h, std::strcmp(argv[4], "so") == 0 ? CKU_SO : CKU_USER, line());
        std::cout << name(rv) << "\n";
    } else if (cmd == "logins" && (argc == 5 || argc == 6)) {
        const int n = std::clamp(std::atoi(argv[4]), 1, 64);
        const std::string pin = line();
        std::vector<CK_SESSION_HANDLE> sessions(size_t(n), 0);
        std::vector<std::string> rvs(static_cast<size_t>(n));
        for (int i = 0; i < n; ++i)
            if (CK_RV rv = f->C_OpenSession(slot, CKF_SERIAL_SESSION, nullptr, nullptr, &sessions[size_t(i)]);
                rv != CKR_OK)
                rvs[size_t(i)] = "C_OpenSession " + name(rv);
        if (argc == 6) { // wait for the gate: every racer ready first
            std::cout << "ready" << std::endl;
            struct stat st;
            for (int i = 0; i < 12000 && stat(argv[5], &st) != 0; ++i)
                std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
        std::vector<std::thread> ts;
        for (int i = 0; i < n; ++i)
            if (rvs[size_t(i)].empty())
                ts.emplace_back([&, i] { rvs[size_t(i)] = name(login(sessions[size_t(i)], CKU_USER, pin)); });
        for (auto& t : ts)
            t.join();
        for (const auto& rv : rvs)
            std::cout << rv << "\n";
    } else if (cmd == "unlock") {
        const std::string so = line();
        std::string user = line();
        CK_RV rv = f->C_OpenSession(slot, rw, nullptr, nullptr, &h);
        if (rv == CKR_OK)
            rv = login(h, CKU_SO, so);
        if (rv == CKR_OK)
            rv = f->C_InitPIN(h, reinterpret_cast<CK_UTF8CHAR_PTR>(user.data()), user.size());
        std::cout << name(rv) << "\n";
    } else if (cmd == "initoken") {
        std::string so = line();
        // 32 bytes blank-padded, and a NUL after them: p11-kit 0.24's
        // client reads C_InitToken's label as a C string (strlen), past
        // the 32 bytes PKCS#11 gives it (docs/service-mode.md).
        CK_UTF8CHAR label[33];
        std::memset(label, ' ', 32);
        std::memcpy(label, "wiped", 5);
        label[32] = '\0';
        std::cout << name(f->C_InitToken(slot, reinterpret_cast<CK_UTF8CHAR_PTR>(so.data()), so.size(), label))
                  << "\n";
    } else if (cmd == "use") {
        CK_RV rv = f->C_OpenSession(slot, rw, nullptr, nullptr, &h);
        if (rv == CKR_OK)
            rv = login(h, CKU_USER, line());
        CK_RV used = CKR_GENERAL_ERROR;
        if (rv == CKR_OK) {
            CK_OBJECT_CLASS cls = CKO_DATA;
            CK_BBOOL no = CK_FALSE, yes = CK_TRUE;
            char label[] = "svcclient";
            CK_ATTRIBUTE t[] = {{CKA_CLASS, &cls, sizeof cls},
                                {CKA_TOKEN, &no, sizeof no},
                                {CKA_PRIVATE, &yes, sizeof yes},
                                {CKA_LABEL, label, sizeof label - 1}};
            CK_OBJECT_HANDLE o = 0;
            used = f->C_CreateObject(h, t, 4, &o);
        }
        std::cout << name(rv) << " " << name(used) << "\n";
    } else if (cmd == "hold") {
        CK_RV rv = f->C_OpenSession(slot, rw, nullptr, nullptr, &h);
        std::cout << "ready" << std::endl;
        if (rv == CKR_OK)
            rv = login(h, CKU_USER, line());
        std::cout << name(rv) << "\n";
    } else {
        return usage();
    }
    f->C_Finalize(nullptr);
    return 0;
}
