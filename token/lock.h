// A reader/writer lock that honours CK_C_INITIALIZE_ARGS: OS locking, or the
// application's own mutex callbacks when it asked for those instead.
#pragma once

#include <ukey/pkcs11.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <thread>

namespace ukey {

// A reader/writer lock for paths that read on every call and write rarely
// (the session table, the fork guard): a reader costs one compare-and-swap
// and one decrement, where a pthread rwlock costs about 90 instructions
// each way (measured with callgrind, bench/callgrind.sh). Writers are
// preferred: once one waits, new readers wait behind it, so a stream of
// signing threads cannot starve a fork() or a C_OpenSession. Waiting is
// std::atomic::wait (a futex), never a spin. Not recursive.
class ReadMostlyLock {
public:
    void lock_shared()
    {
        std::uint32_t s = state_.load(std::memory_order_relaxed);
        for (;;) {
            if (s & writer) {
                state_.wait(s, std::memory_order_relaxed);
                s = state_.load(std::memory_order_relaxed);
            } else if (state_.compare_exchange_weak(s, s + 1, std::memory_order_acquire, std::memory_order_relaxed)) {
                return;
            }
        }
    }
    void unlock_shared()
    {
        // The last reader out lets a waiting writer in.
        if (state_.fetch_sub(1, std::memory_order_release) == (writer | 1))
            state_.notify_all();
    }
    void lock()
    {
        std::uint32_t s = state_.load(std::memory_order_relaxed);
        for (;;) { // one writer at a time claims the bit...
            if (s & writer) {
                state_.wait(s, std::memory_order_relaxed);
                s = state_.load(std::memory_order_relaxed);
            } else if (state_.compare_exchange_weak(s, s | writer, std::memory_order_acquire,
                                                    std::memory_order_relaxed)) {
                break;
            }
        }
        // ...then waits for the readers already in to leave.
        while ((s = state_.load(std::memory_order_acquire)) != writer)
            state_.wait(s, std::memory_order_acquire);
    }
    void unlock()
    {
        state_.store(0, std::memory_order_release);
        state_.notify_all();
    }
    // lock(), but giving up at `deadline` (then nothing is held, and the
    // readers held back meanwhile go on). Polls every millisecond: for the
    // rare writer that must not wait for ever (CallsPaused), not for paths
    // that write often.
    bool try_lock_until(std::chrono::steady_clock::time_point deadline)
    {
        std::uint32_t s = state_.load(std::memory_order_relaxed);
        for (;;) {
            if (s & writer) {
                if (std::chrono::steady_clock::now() >= deadline)
                    return false;
                std::this_thread::sleep_for(std::chrono::milliseconds(1));
                s = state_.load(std::memory_order_relaxed);
            } else if (state_.compare_exchange_weak(s, s | writer, std::memory_order_acquire,
                                                    std::memory_order_relaxed)) {
                break;
            }
        }
        while (state_.load(std::memory_order_acquire) != writer) {
            if (std::chrono::steady_clock::now() >= deadline) {
                state_.fetch_and(~writer, std::memory_order_release);
                state_.notify_all();
                return false;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
        return true;
    }
    // In a forked child, whose only thread holds nothing: start afresh.
    void reset() { state_.store(0, std::memory_order_relaxed); }

private:
    static constexpr std::uint32_t writer = 0x80000000u;
    std::atomic<std::uint32_t> state_{0};
};

struct MutexCallbacks {
    CK_CREATEMUTEX create = nullptr;
    CK_DESTROYMUTEX destroy = nullptr;
    CK_LOCKMUTEX lock = nullptr;
    CK_UNLOCKMUTEX unlock = nullptr;
};

class RwLock {
public:
    // cb == nullptr: OS locking. Otherwise every lock goes through the
    // application's callbacks (exclusive only: they offer no shared mode).
    explicit RwLock(const MutexCallbacks* cb = nullptr);
    ~RwLock();
    RwLock(const RwLock&) = delete;
    RwLock& operator=(const RwLock&) = delete;

    void lock();
    void unlock();
    void lock_shared()
    {
        if (cb_)
            lock();
        else
            os_.lock_shared();
    }
    void unlock_shared()
    {
        if (cb_)
            unlock();
        else
            os_.unlock_shared();
    }

private:
    ReadMostlyLock os_;
    const MutexCallbacks* cb_;
    CK_VOID_PTR app_ = nullptr;
};

} // namespace ukey
