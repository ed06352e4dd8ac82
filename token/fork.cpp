#include "fork.h"

#include <mutex>
#include <pthread.h>

namespace ukey {
namespace detail {
std::atomic<unsigned> fork_generation{0};
}

namespace {
void in_child()
{
    detail::fork_generation.fetch_add(1, std::memory_order_relaxed);
}
} // namespace

void install_fork_handler()
{
    static std::once_flag once;
    std::call_once(once, [] { pthread_atfork(nullptr, nullptr, in_child); });
}

} // namespace ukey
