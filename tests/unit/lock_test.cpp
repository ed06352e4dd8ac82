// ReadMostlyLock::try_lock_until and CallsPaused: a writer that gives up
// leaves nothing held, and the readers it held back go on.
#include "token/fork.h"
#include "token/lock.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

TEST(ReadMostlyLock, TryLockGivesUpWhileAReaderStaysAndHoldsNothing)
{
    ukey::ReadMostlyLock l;
    l.lock_shared();
    const auto t0 = Clock::now();
    EXPECT_FALSE(l.try_lock_until(t0 + 50ms));
    EXPECT_GE(Clock::now() - t0, 50ms);
    // Nothing held: another reader gets in at once, and a writer after both leave.
    std::atomic<bool> in{false};
    std::thread r([&] {
        l.lock_shared();
        in = true;
        l.unlock_shared();
    });
    r.join();
    EXPECT_TRUE(in);
    l.unlock_shared();
    EXPECT_TRUE(l.try_lock_until(Clock::now() + 1s));
    l.unlock();
}

TEST(ReadMostlyLock, TryLockWaitsForTheReadersToLeave)
{
    ukey::ReadMostlyLock l;
    l.lock_shared();
    std::thread r([&] {
        std::this_thread::sleep_for(30ms);
        l.unlock_shared();
    });
    EXPECT_TRUE(l.try_lock_until(Clock::now() + 30s));
    r.join();
    l.unlock();
}

TEST(CallsPaused, GivesUpWhenACallDoesNotEnd)
{
    ukey::install_fork_handler();
    std::atomic<bool> inside{false}, leave{false};
    std::thread call([&] {
        const ukey::ForkGuard g; // a thread inside a backend call
        inside = true;
        while (!leave)
            std::this_thread::sleep_for(1ms);
    });
    while (!inside)
        std::this_thread::sleep_for(1ms);
    {
        const ukey::CallsPaused p(50ms);
        EXPECT_FALSE(p.held());
    }
    // Given up: a new call is not held back.
    std::thread other([] { const ukey::ForkGuard g; });
    other.join();
    leave = true;
    call.join();
    const ukey::CallsPaused p(1s);
    EXPECT_TRUE(p.held());
}

TEST(CallsPaused, NotTakenInsideAGuard)
{
    ukey::install_fork_handler();
    const ukey::ForkGuard g;
    const ukey::CallsPaused p(1s);
    EXPECT_FALSE(p.held());
}
