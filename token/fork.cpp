#include "token/fork.h"

#include "token/lock.h"

#include <mutex>
#include <pthread.h>

namespace ukey {
namespace detail {
std::atomic<unsigned> fork_generation{0};
}

namespace {

constexpr int shards = 16;

struct alignas(64) Shard {
    ReadMostlyLock lock; // writer-preferring: a waiting fork is not starved
};
Shard guard_shards[shards];

// initial-exec: a guard is taken on every call, and the default model for a
// dlopen'ed library reaches each variable through __tls_get_addr (about 50
// instructions a call under callgrind). Two ints fit easily in the static
// TLS that glibc keeps spare for libraries loaded later.
[[gnu::tls_model("initial-exec")]] thread_local int guard_depth = 0;
[[gnu::tls_model("initial-exec")]] thread_local int my_shard = -1;
std::atomic<int> next_shard{0};
// Set by the prepare handler when it took the shards.
bool fork_holds_guards = false;

// Also used in a forked child, whose one thread holds the locks the
// prepare handler took: they are made anew.
void init_shards()
{
    for (Shard& s : guard_shards)
        s.lock.reset();
}

void before_fork()
{
    // A backend that forks from inside one of our calls holds a guard
    // itself: waiting for it would wait forever.
    fork_holds_guards = guard_depth == 0;
    if (fork_holds_guards)
        for (Shard& s : guard_shards)
            s.lock.lock();
}

void release_after_fork()
{
    if (fork_holds_guards)
        for (Shard& s : guard_shards)
            s.lock.unlock();
    fork_holds_guards = false;
}

void in_child()
{
    if (fork_holds_guards)
        init_shards();
    fork_holds_guards = false;
    detail::fork_generation.fetch_add(1, std::memory_order_relaxed);
}

} // namespace

void install_fork_handler()
{
    static std::once_flag once;
    std::call_once(once, [] {
        init_shards();
        pthread_atfork(before_fork, release_after_fork, in_child);
    });
}

CallsPaused::CallsPaused(std::chrono::milliseconds most) : held_(guard_depth == 0)
{
    if (!held_)
        return;
    const auto deadline = std::chrono::steady_clock::now() + most;
    for (int i = 0; i < shards; ++i) {
        if (!guard_shards[i].lock.try_lock_until(deadline)) {
            while (i-- > 0)
                guard_shards[i].lock.unlock();
            held_ = false;
            return;
        }
    }
    // The pausing thread's own calls (C_Finalize, C_Initialize) pass.
    ++guard_depth;
}

CallsPaused::~CallsPaused()
{
    if (!held_)
        return;
    --guard_depth;
    for (Shard& s : guard_shards)
        s.lock.unlock();
}

ForkGuard::ForkGuard() : shard_(-1)
{
    if (guard_depth++ > 0)
        return;
    if (my_shard < 0)
        my_shard = next_shard.fetch_add(1, std::memory_order_relaxed) % shards;
    shard_ = my_shard;
    guard_shards[shard_].lock.lock_shared();
}

ForkGuard::~ForkGuard()
{
    --guard_depth;
    if (shard_ >= 0)
        guard_shards[shard_].lock.unlock_shared();
}

} // namespace ukey
