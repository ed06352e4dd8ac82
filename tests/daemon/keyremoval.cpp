// keyremoval: a Key taken away while an application holds sessions on it,
// seen through a PKCS#11 module (libukey-pkcs11.so), for
// tests/daemon/key_removal.sh.
//
//   keyremoval MODULE LABEL...
//
// Loads MODULE, C_Initialize (CKF_OS_LOCKING_OK), opens a read-only session
// on each token LABEL, and starts a thread blocked in C_WaitForSlotEvent(0)
// that queues every slot it returns. Prints "ready" on stdout, then takes
// one command per line on stdin and answers each with one line:
//   removed LABEL   waits (60 s at most) for the event naming LABEL's slot,
//                   then checks what a pulled card gives: C_GetTokenInfo and
//                   C_OpenSession CKR_TOKEN_NOT_PRESENT, C_GetSlotInfo
//                   without CKF_TOKEN_PRESENT, the slot out of
//                   C_GetSlotList(CK_TRUE), the Key's session gone
//                   (CKR_SESSION_HANDLE_INVALID from C_GetSessionInfo,
//                   C_FindObjectsInit and C_CloseSession), and every other
//                   session still there.
//   absent LABEL    LABEL's slot still answers as out (no event needed).
//   close LABEL     C_CloseSession on LABEL's session.
//   inserted LABEL  waits (60 s at most) for an event naming a slot that
//                   holds token LABEL, and opens a session there.
//   quit            C_Finalize (which must wake the waiting thread).
// Answers: "<command> LABEL ok" or "<command> LABEL FAIL <why>".
// Exit 0 if every answer was ok, 1 if not, 2 on usage or load errors.
#include <ukey/pkcs11.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <iostream>
#include <map>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <dlfcn.h>

namespace {

CK_FUNCTION_LIST_PTR f = nullptr;

// The events the waiting thread returned, in order.
struct Events {
    std::mutex m;
    std::condition_variable cv;
    std::deque<CK_SLOT_ID> slots;
    bool ended = false;
    CK_RV end_rv = CKR_OK;

    // The first queued slot for which pick() holds (taken out), or nothing
    // within `most`.
    template <class Pick>
    bool take(std::chrono::seconds most, Pick pick, CK_SLOT_ID& out)
    {
        std::unique_lock<std::mutex> g(m);
        const auto until = std::chrono::steady_clock::now() + most;
        for (;;) {
            for (auto it = slots.begin(); it != slots.end(); ++it)
                if (pick(*it)) {
                    out = *it;
                    slots.erase(it);
                    return true;
                }
            if (ended || cv.wait_until(g, until) == std::cv_status::timeout)
                return false;
        }
    }
};

std::string hex(CK_RV rv)
{
    char b[32];
    snprintf(b, sizeof b, "0x%lx", rv);
    return b;
}

std::string label_of(CK_SLOT_ID slot)
{
    CK_TOKEN_INFO ti{};
    if (f->C_GetTokenInfo(slot, &ti) != CKR_OK)
        return {};
    std::string l(reinterpret_cast<const char*>(ti.label), sizeof ti.label);
    l.erase(l.find_last_not_of(' ') + 1);
    return l;
}

std::vector<CK_SLOT_ID> slot_list(CK_BBOOL present)
{
    CK_ULONG n = 0;
    if (f->C_GetSlotList(present, nullptr, &n) != CKR_OK)
        return {};
    std::vector<CK_SLOT_ID> ids(n);
    if (f->C_GetSlotList(present, ids.data(), &n) != CKR_OK)
        return {};
    ids.resize(n);
    return ids;
}

struct Key {
    CK_SLOT_ID slot = 0;
    CK_SESSION_HANDLE session = CK_INVALID_HANDLE;
};

// What a pulled card gives; empty when all holds.
std::string check_out(const std::string& label, const Key& k, const std::map<std::string, Key>& keys, bool session_too)
{
    CK_TOKEN_INFO ti{};
    if (CK_RV rv = f->C_GetTokenInfo(k.slot, &ti); rv != CKR_TOKEN_NOT_PRESENT)
        return "C_GetTokenInfo " + hex(rv);
    CK_SLOT_INFO si{};
    if (CK_RV rv = f->C_GetSlotInfo(k.slot, &si); rv != CKR_OK || (si.flags & CKF_TOKEN_PRESENT))
        return "C_GetSlotInfo " + hex(rv) + " flags " + hex(si.flags);
    const auto present = slot_list(CK_TRUE);
    if (std::find(present.begin(), present.end(), k.slot) != present.end())
        return "still in C_GetSlotList(CK_TRUE)";
    CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
    if (CK_RV rv = f->C_OpenSession(k.slot, CKF_SERIAL_SESSION, nullptr, nullptr, &s); rv != CKR_TOKEN_NOT_PRESENT)
        return "C_OpenSession " + hex(rv);
    if (session_too) {
        CK_SESSION_INFO info{};
        if (CK_RV rv = f->C_GetSessionInfo(k.session, &info); rv != CKR_SESSION_HANDLE_INVALID)
            return "C_GetSessionInfo on its session " + hex(rv);
        if (CK_RV rv = f->C_FindObjectsInit(k.session, nullptr, 0); rv != CKR_SESSION_HANDLE_INVALID)
            return "C_FindObjectsInit on its session " + hex(rv);
        if (CK_RV rv = f->C_CloseSession(k.session); rv != CKR_SESSION_HANDLE_INVALID)
            return "C_CloseSession on its session " + hex(rv);
    }
    for (const auto& [other, ok] : keys) {
        CK_SESSION_INFO info{};
        if (other == label || ok.session == CK_INVALID_HANDLE)
            continue;
        if (CK_RV rv = f->C_GetSessionInfo(ok.session, &info); rv != CKR_OK)
            return "the session on " + other + " is gone too: " + hex(rv);
    }
    return {};
}

} // namespace

int main(int argc, char** argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: keyremoval MODULE LABEL...\n");
        return 2;
    }
    void* h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    auto get = h ? reinterpret_cast<CK_C_GetFunctionList>(dlsym(h, "C_GetFunctionList")) : nullptr;
    if (!get || get(&f) != CKR_OK || !f) {
        fprintf(stderr, "keyremoval: cannot load %s: %s\n", argv[1], h ? "no C_GetFunctionList" : dlerror());
        return 2;
    }
    CK_C_INITIALIZE_ARGS init{};
    init.flags = CKF_OS_LOCKING_OK;
    if (CK_RV rv = f->C_Initialize(&init); rv != CKR_OK) {
        fprintf(stderr, "keyremoval: C_Initialize: 0x%lx\n", rv);
        return 2;
    }
    std::map<std::string, Key> keys;
    for (CK_SLOT_ID s : slot_list(CK_TRUE))
        if (const std::string l = label_of(s); !l.empty())
            keys[l].slot = s;
    for (int i = 2; i < argc; ++i) {
        auto it = keys.find(argv[i]);
        if (it == keys.end() ||
            f->C_OpenSession(it->second.slot, CKF_SERIAL_SESSION, nullptr, nullptr, &it->second.session) != CKR_OK) {
            fprintf(stderr, "keyremoval: no session on a token labelled %s\n", argv[i]);
            return 2;
        }
    }

    Events ev;
    std::thread waiter([&] {
        for (;;) {
            CK_SLOT_ID s = 0;
            const CK_RV rv = f->C_WaitForSlotEvent(0, &s, nullptr);
            std::lock_guard<std::mutex> g(ev.m);
            if (rv != CKR_OK) {
                ev.ended = true;
                ev.end_rv = rv;
                ev.cv.notify_all();
                return;
            }
            ev.slots.push_back(s);
            ev.cv.notify_all();
        }
    });
    printf("ready\n");
    fflush(stdout);

    int rc = 0;
    std::string line;
    while (std::getline(std::cin, line)) {
        std::istringstream in(line);
        std::string cmd, label, why;
        in >> cmd >> label;
        if (cmd == "quit")
            break;
        auto it = keys.find(label);
        if (cmd == "removed" && it != keys.end()) {
            CK_SLOT_ID s = 0;
            const CK_SLOT_ID want = it->second.slot;
            if (!ev.take(std::chrono::seconds(60), [&](CK_SLOT_ID x) { return x == want; }, s))
                why = "no event for its slot " + std::to_string(want) + " within 60 s";
            else
                why = check_out(label, it->second, keys, true);
            it->second.session = CK_INVALID_HANDLE;
        } else if (cmd == "absent" && it != keys.end()) {
            why = check_out(label, it->second, keys, false);
        } else if (cmd == "close" && it != keys.end()) {
            if (CK_RV rv = f->C_CloseSession(it->second.session); rv != CKR_OK)
                why = "C_CloseSession " + hex(rv);
            it->second.session = CK_INVALID_HANDLE;
        } else if (cmd == "inserted" && it == keys.end()) {
            CK_SLOT_ID s = 0;
            Key k;
            if (!ev.take(std::chrono::seconds(60), [&](CK_SLOT_ID x) { return label_of(x) == label; }, s))
                why = "no event for a slot holding it within 60 s";
            else if (CK_RV rv = f->C_OpenSession(s, CKF_SERIAL_SESSION, nullptr, nullptr, &k.session); rv != CKR_OK)
                why = "C_OpenSession on the event's slot " + hex(rv);
            k.slot = s;
            keys[label] = k;
        } else {
            why = "unknown command or label";
        }
        printf("%s %s %s\n", cmd.c_str(), label.c_str(), why.empty() ? "ok" : ("FAIL " + why).c_str());
        fflush(stdout);
        rc = why.empty() ? rc : 1;
    }

    f->C_Finalize(nullptr);
    {
        std::unique_lock<std::mutex> g(ev.m);
        if (!ev.cv.wait_for(g, std::chrono::seconds(30), [&] { return ev.ended; })) {
            printf("finalize FAIL the waiting thread was not woken within 30 s\n");
            fflush(stdout);
            _exit(1);
        }
        if (ev.end_rv != CKR_CRYPTOKI_NOT_INITIALIZED) {
            printf("finalize FAIL the waiting thread got %s\n", hex(ev.end_rv).c_str());
            rc = 1;
        }
    }
    waiter.join();
    printf("finalize ok\n");
    return rc;
}
