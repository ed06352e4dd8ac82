// slotwait: C_WaitForSlotEvent through a PKCS#11 module (libukey-pkcs11.so),
// for tests/daemon/slot_wait.sh.
//
//   slotwait MODULE TIMEOUT_MS
//
// Loads MODULE with dlopen, C_Initialize (CKF_OS_LOCKING_OK), checks that
// C_WaitForSlotEvent(CKF_DONT_BLOCK) says CKR_NO_EVENT, then runs in
// parallel:
//   - a thread blocked in C_WaitForSlotEvent(0);
//   - a thread polling C_WaitForSlotEvent(CKF_DONT_BLOCK) every 20 ms.
// It prints "ready" on stderr once both run; when both have returned a slot
// it prints on stdout
//   blocking SLOT MS
//   dontblock SLOT MS
// (MS from "ready"). Then a third thread blocks again and C_Finalize must wake
// it with CKR_CRYPTOKI_NOT_INITIALIZED:
//   finalize RV MS
// Exit 0 if all of that happened within TIMEOUT_MS, 1 if not (what was
// missing on stderr), 2 on usage or load errors.
#include <ukey/pkcs11.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include <dlfcn.h>

namespace {

using Clock = std::chrono::steady_clock;

long ms_since(Clock::time_point t0)
{
    return long(std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count());
}

struct Result {
    std::atomic<bool> done{false};
    CK_RV rv = CKR_OK;
    CK_SLOT_ID slot = 0;
    long ms = 0;
};

} // namespace

int main(int argc, char** argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: slotwait MODULE TIMEOUT_MS\n");
        return 2;
    }
    const long timeout_ms = atol(argv[2]);
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
    CK_C_INITIALIZE_ARGS init{};
    init.flags = CKF_OS_LOCKING_OK;
    CK_RV rv = f->C_Initialize(&init);
    if (rv != CKR_OK) {
        fprintf(stderr, "slotwait: C_Initialize: 0x%lx\n", rv);
        return 2;
    }
    CK_SLOT_ID slot = 0;
    rv = f->C_WaitForSlotEvent(CKF_DONT_BLOCK, &slot, nullptr);
    if (rv != CKR_NO_EVENT) {
        fprintf(stderr, "slotwait: first C_WaitForSlotEvent(CKF_DONT_BLOCK) returned 0x%lx, expected CKR_NO_EVENT\n",
                rv);
        f->C_Finalize(nullptr);
        return 1;
    }

    const auto t0 = Clock::now();
    Result blocking, polling;
    std::atomic<bool> stop_polling{false};
    std::thread tb([&] {
        CK_SLOT_ID s = 0;
        blocking.rv = f->C_WaitForSlotEvent(0, &s, nullptr);
        blocking.slot = s;
        blocking.ms = ms_since(t0);
        blocking.done = true;
    });
    std::thread tp([&] {
        while (!stop_polling) {
            CK_SLOT_ID s = 0;
            CK_RV r = f->C_WaitForSlotEvent(CKF_DONT_BLOCK, &s, nullptr);
            if (r != CKR_NO_EVENT) {
                polling.rv = r;
                polling.slot = s;
                polling.ms = ms_since(t0);
                polling.done = true;
                return;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
    });
    fprintf(stderr, "ready\n");

    while ((!blocking.done || !polling.done) && ms_since(t0) < timeout_ms)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    stop_polling = true;
    tp.join();
    int rc = 0;
    if (!blocking.done) {
        fprintf(stderr, "slotwait: the blocking C_WaitForSlotEvent did not return within %ld ms\n", timeout_ms);
        rc = 1;
    } else if (blocking.rv != CKR_OK) {
        fprintf(stderr, "slotwait: the blocking C_WaitForSlotEvent returned 0x%lx\n", blocking.rv);
        rc = 1;
    } else {
        printf("blocking %lu %ld\n", blocking.slot, blocking.ms);
    }
    if (!polling.done) {
        fprintf(stderr, "slotwait: C_WaitForSlotEvent(CKF_DONT_BLOCK) reported no event within %ld ms\n", timeout_ms);
        rc = 1;
    } else if (polling.rv != CKR_OK) {
        fprintf(stderr, "slotwait: C_WaitForSlotEvent(CKF_DONT_BLOCK) returned 0x%lx\n", polling.rv);
        rc = 1;
    } else {
        printf("dontblock %lu %ld\n", polling.slot, polling.ms);
    }
    fflush(stdout);

    // C_Finalize wakes a blocked caller.
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
    while (!late.done && ms_since(tf) < 5000)
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    if (!late.done) {
        fprintf(stderr, "slotwait: C_Finalize did not wake the blocked C_WaitForSlotEvent within 5 s\n");
        fflush(stderr);
        _exit(1); // the thread cannot be joined
    }
    tl.join();
    printf("finalize 0x%lx %ld\n", late.rv, ms_since(tf));
    if (late.rv != CKR_CRYPTOKI_NOT_INITIALIZED) {
        fprintf(stderr, "slotwait: C_Finalize woke the waiter with 0x%lx, expected CKR_CRYPTOKI_NOT_INITIALIZED\n",
                late.rv);
        rc = 1;
    }
    // The module stays loaded: no dlclose while anything may still unwind.
    return rc;
}
