// slotwait: C_WaitForSlotEvent through a PKCS#11 module (libukey-pkcs11.so),
// for tests/daemon/slot_wait.sh.
//
//   slotwait MODULE block|poll TIMEOUT_MS
//
// Loads MODULE with dlopen, C_Initialize (CKF_OS_LOCKING_OK), checks that
// C_WaitForSlotEvent(CKF_DONT_BLOCK) says CKR_NO_EVENT, then
//   block: a second thread blocks in C_WaitForSlotEvent(0);
//   poll:  a second thread polls C_WaitForSlotEvent(CKF_DONT_BLOCK) every 20 ms.
// It prints "ready" on stderr once that thread runs; when it returns a slot
// it prints on stdout
//   block|poll SLOT MS AT
// (MS from "ready"; AT the epoch ms, CLOCK_REALTIME, when it returned, for
// the script to time from when it made the token), and the slot must be usable: C_GetTokenInfo and
// C_OpenSession on it succeed, and
//   token LABEL
// follows. Events left (the empty slot SoftHSM2 adds beside a new token)
// are taken with CKF_DONT_BLOCK, each a slot C_GetSlotInfo knows. Then a
// third thread blocks and C_Finalize must wake it with
// CKR_CRYPTOKI_NOT_INITIALIZED:
//   finalize RV MS
// Exit 0 if the event came within TIMEOUT_MS and all of that happened, 1 if
// not (what was missing on stderr; also when C_Finalize has not woken the
// waiters after 30 s: they would wait for ever), 2 on usage or load errors.
#include <ukey/pkcs11.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string>
#include <thread>

#include <dlfcn.h>

namespace {

using Clock = std::chrono::steady_clock;

long ms_since(Clock::time_point t0)
{
    return long(std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count());
}

long long epoch_ms()
{
    timespec ts{};
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

// C_Finalize wakes blocked callers at once; this only ends a test whose
// waiters were never woken (they would wait for ever). The script logs the
// time taken and checks it against a generous bound of its own.
constexpr long kFinalizeHangMs = 30000;

struct Result {
    std::atomic<bool> done{false};
    CK_RV rv = CKR_OK;
    CK_SLOT_ID slot = 0;
    long ms = 0;
    long long at = 0; // epoch ms
};

} // namespace

int main(int argc, char** argv)
{
    if (argc != 4 || (std::string(argv[2]) != "block" && std::string(argv[2]) != "poll")) {
        fprintf(stderr, "usage: slotwait MODULE block|poll TIMEOUT_MS\n");
        return 2;
    }
    const bool block = std::string(argv[2]) == "block";
    const long timeout_ms = atol(argv[3]);
    void* h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        fprintf(stderr, "slotwait: dlopen %s: %s\n", argv[1], dlerror());
        return 2;
    }
    auto get = reinterpret_cast<CK_C_GetFunctionList>(dlsym(h, "C_GetFunctionList"));
    CK_FUNCTION_LIST_PTR f = nullptr;
    if (!get || get(&f) != CKR_OK || !f) {
        fprintf(stderr, "slotwait: no C_GetFunctionList in %s\n", argv[1]);
        return 2;
    }
    const auto tstart = Clock::now();
    CK_C_INITIALIZE_ARGS init{};
    init.flags = CKF_OS_LOCKING_OK;
    CK_RV rv = f->C_Initialize(&init);
    if (rv != CKR_OK) {
        fprintf(stderr, "slotwait: C_Initialize: 0x%lx\n", rv);
        return 2;
    }
    fprintf(stderr, "C_Initialize took %ld ms\n", ms_since(tstart));
    const auto tfirst = Clock::now();
    CK_SLOT_ID slot = 0;
    rv = f->C_WaitForSlotEvent(CKF_DONT_BLOCK, &slot, nullptr);
    fprintf(stderr, "first C_WaitForSlotEvent(CKF_DONT_BLOCK) took %ld ms\n", ms_since(tfirst));
    if (rv != CKR_NO_EVENT) {
        fprintf(stderr, "slotwait: first C_WaitForSlotEvent(CKF_DONT_BLOCK) returned 0x%lx, expected CKR_NO_EVENT\n",
                rv);
        f->C_Finalize(nullptr);
        return 1;
    }

    const auto t0 = Clock::now();
    Result res;
    std::atomic<bool> stop{false};
    std::thread t([&] {
        CK_SLOT_ID s = 0;
        CK_RV r;
        if (block) {
            r = f->C_WaitForSlotEvent(0, &s, nullptr);
        } else {
            while ((r = f->C_WaitForSlotEvent(CKF_DONT_BLOCK, &s, nullptr)) == CKR_NO_EVENT && !stop)
                std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        res.rv = r;
        res.slot = s;
        res.ms = ms_since(t0);
        res.at = epoch_ms();
        res.done = true;
    });
    fprintf(stderr, "ready\n");

    while (!res.done && ms_since(t0) < timeout_ms)
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    int rc = 0;
    if (!res.done) {
        fprintf(stderr, "slotwait: C_WaitForSlotEvent(%s) reported no event within %ld ms\n",
                block ? "0" : "CKF_DONT_BLOCK", timeout_ms);
        stop = true;
        rc = 1;
    } else if (res.rv != CKR_OK) {
        fprintf(stderr, "slotwait: C_WaitForSlotEvent(%s) returned 0x%lx\n", block ? "0" : "CKF_DONT_BLOCK", res.rv);
        rc = 1;
    } else {
        printf("%s %lu %ld %lld\n", argv[2], res.slot, res.ms, res.at);
        // The contract: a slot the event names is one the application can use.
        CK_TOKEN_INFO ti{};
        CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
        if ((rv = f->C_GetTokenInfo(res.slot, &ti)) != CKR_OK) {
            fprintf(stderr, "slotwait: C_GetTokenInfo on the event's slot %lu: 0x%lx\n", res.slot, rv);
            rc = 1;
        } else if ((rv = f->C_OpenSession(res.slot, CKF_SERIAL_SESSION, nullptr, nullptr, &s)) != CKR_OK) {
            fprintf(stderr, "slotwait: C_OpenSession on the event's slot %lu: 0x%lx\n", res.slot, rv);
            rc = 1;
        } else {
            f->C_CloseSession(s);
            std::string label(reinterpret_cast<const char*>(ti.label), sizeof ti.label);
            label.erase(label.find_last_not_of(' ') + 1);
            printf("token %s\n", label.c_str());
        }
        CK_SLOT_ID more = 0;
        for (int i = 0; i < 16 && f->C_WaitForSlotEvent(CKF_DONT_BLOCK, &more, nullptr) == CKR_OK; ++i) {
            CK_SLOT_INFO si{};
            if ((rv = f->C_GetSlotInfo(more, &si)) != CKR_OK) {
                fprintf(stderr, "slotwait: C_GetSlotInfo on a further event's slot %lu: 0x%lx\n", more, rv);
                rc = 1;
            }
        }
    }
    fflush(stdout);

    // C_Finalize wakes a blocked caller (also the one above, if it still waits).
    Result late;
    std::thread tl([&] {
        CK_SLOT_ID s = 0;
        late.rv = f->C_WaitForSlotEvent(0, &s, nullptr);
        late.done = true;
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    if (late.done) {
        fprintf(stderr, "slotwait: a blocking C_WaitForSlotEvent returned at once (0x%lx) with nothing happening\n",
                late.rv);
        rc = 1;
    }
    const auto tf = Clock::now();
    f->C_Finalize(nullptr);
    while ((!late.done || !res.done) && ms_since(tf) < kFinalizeHangMs)
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    if (!late.done || !res.done) {
        fprintf(stderr, "slotwait: C_Finalize did not wake the blocked C_WaitForSlotEvent within %ld s\n",
                kFinalizeHangMs / 1000);
        fflush(stderr);
        _exit(1); // the threads cannot be joined
    }
    tl.join();
    t.join();
    printf("finalize 0x%lx %ld\n", late.rv, ms_since(tf));
    if (late.rv != CKR_CRYPTOKI_NOT_INITIALIZED) {
        fprintf(stderr, "slotwait: C_Finalize woke the waiter with 0x%lx, expected CKR_CRYPTOKI_NOT_INITIALIZED\n",
                late.rv);
        rc = 1;
    }
    // The module stays loaded: no dlclose while anything may still unwind.
    return rc;
}
