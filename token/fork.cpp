#include "token/fork.h"

#include <mutex>
#include <pthread.h>

namespace ukey {
namespace detail {
std::atomic<unsigned> fork_generation{0};
}

namespace {

constexpr int shards = 16;

struct alignas(64) Shard {
    pthread_rwlock_t lock;
};
Shard guard_shards[shards];

thread_local int guard_depth = 0;
thread_local int my_shard = -1;
std::atomic<int> next_shard{0};
// Set by the prepare handler when it took the shards.
bool fork_holds_guards = false;

// Also used in a forked child: glibc's rwlock remembers its writer by
// thread ID, which the child's one thread no longer has, so the locks the
// prepare handler took cannot be unlocked there, only made anew.
void init_shards()
{
    pthread_rwlockattr_t attr;
    pthread_rwlockattr_init(&attr);
    // A waiting fork must not starve behind a stream of signing threads.
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    for (Shard& s : guard_shards)
        pthread_rwlock_init(&s.lock, &attr);
    pthread_rwlockattr_destroy(&attr);
}

void before_fork()
{
    // A backend that forks from inside one of our calls holds a guard
    // itself: waiting for it would wait forever.
    fork_holds_guards = guard_depth == 0;
    if (fork_holds_guards)
        for (Shard& s : guard_shards)
            pthread_rwlock_wrlock(&s.lock);
}

void release_after_fork()
{
    if (fork_holds_guards)
        for (Shard& s : guard_shards)
            pthread_rwlock_unlock(&s.lock);
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

ForkGuard::ForkGuard() : shard_(-1)
{
    if (guard_depth++ > 0)
        return;
    if (my_shard < 0)
        my_shard = next_shard.fetch_add(1, std::memory_order_relaxed) % shards;
    shard_ = my_shard;
    pthread_rwlock_rdlock(&guard_shards[shard_].lock);
}

ForkGuard::~ForkGuard()
{
    --guard_depth;
    if (shard_ >= 0)
        pthread_rwlock_unlock(&guard_shards[shard_].lock);
}

} // namespace ukey
