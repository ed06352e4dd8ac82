// Fork safety.
//
// Fork detection without a syscall on every call: a counter that the child
// side of pthread_atfork bumps (the approach of p11-kit's p11_forkid).
//
// Fork consistency: every call into a backend, and every use of the PIN
// state files, runs under a ForkGuard. fork() (through a pthread_atfork
// prepare handler) waits until no thread holds one, so a child never
// inherits a backend in the middle of a call, with its locks held by threads
// that do not exist in the child, nor a state-file lock it would keep. The
// guard is a sharded reader lock: threads take different shards, so it costs
// no shared cache line on the signing path.
#pragma once

#include <atomic>
#include <chrono>

namespace ukey {

namespace detail {
extern std::atomic<unsigned> fork_generation;
}

// Changes in a child process after every fork().
inline unsigned fork_generation()
{
    return detail::fork_generation.load(std::memory_order_relaxed);
}

// Registers the handlers once; safe to call many times.
void install_fork_handler();

// Every backend call of this process paused: waits until no thread is
// inside a backend (as fork() does) and keeps new calls out until it ends.
// For re-initialising a backend (Proxy::reload_backend). Not taken (held()
// false) by a thread that is itself inside a guard, nor when the calls in
// flight do not end within `most`: a thread inside a guard may be waiting
// for one that waits behind this pause, and giving up breaks that circle.
class CallsPaused {
public:
    explicit CallsPaused(std::chrono::milliseconds most);
    ~CallsPaused();
    CallsPaused(const CallsPaused&) = delete;
    CallsPaused& operator=(const CallsPaused&) = delete;
    bool held() const { return held_; }

private:
    bool held_;
};

class ForkGuard {
public:
    ForkGuard();
    ~ForkGuard();
    ForkGuard(const ForkGuard&) = delete;
    ForkGuard& operator=(const ForkGuard&) = delete;

private:
    int shard_; // -1: nested in another guard of this thread
};

} // namespace ukey
