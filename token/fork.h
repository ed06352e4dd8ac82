// Fork detection without a syscall on every call: a counter that the child
// side of pthread_atfork bumps (the approach of p11-kit's p11_forkid).
#pragma once

#include <atomic>

namespace ukey {

namespace detail {
extern std::atomic<unsigned> fork_generation;
}

// Changes in a child process after every fork().
inline unsigned fork_generation()
{
    return detail::fork_generation.load(std::memory_order_relaxed);
}

// Registers the handler once; safe to call many times.
void install_fork_handler();

} // namespace ukey
