// Backends that can block in C_WaitForSlotEvent (OpenSC and most card
// vendors' modules) tell us about token changes themselves: one child per
// backend (`ukeyd --wait-backend MODULE`) loads the backend module directly,
// blocks there and prints a line per event, which makes the daemon rescan.
// A backend that cannot (SoftHSM2: CKR_FUNCTION_NOT_SUPPORTED) is left to
// the fallback rescan. In a child, a module's blocking call cannot stall the
// daemon, and C_Finalize-to-cancel (the only way PKCS#11 offers) is a kill.
#pragma once

#include "token/config.h"

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace ukey::daemon {

// The child's side: the exit code (3: this module cannot block).
int run_backend_wait(const std::string& module);
inline constexpr int backend_wait_unsupported = 3;

class BackendWaiters {
public:
    BackendWaiters(int epoll_fd, std::string self_exe) : ep_(epoll_fd), exe_(std::move(self_exe)) {}
    ~BackendWaiters() { stop_all(); }

    void configure(const std::vector<BackendConfig>& backends);
    bool owns(int fd) const { return by_fd_.count(fd) != 0; }
    // True when the child reported a slot event.
    bool on_readable(int fd);
    // True if the pid was one of ours.
    bool on_exit(pid_t pid, int status);
    // Restarts children that died, with back-off.
    void on_tick(int64_t mono);
    int64_t next_deadline() const;
    void stop_all();
    // Backends whose waiter runs, for `status`.
    std::vector<std::string> waiting() const;

private:
    struct Child {
        std::string name, module;
        pid_t pid = -1;
        int fd = -1;
        std::string buf;
        bool unsupported = false;
        int failures = 0;
        int64_t restart_at = 0; // monotonic ms; 0 = not scheduled
    };
    void start(Child& c);
    int ep_;
    std::string exe_;
    std::map<std::string, Child> children_; // by backend name
    std::map<int, std::string> by_fd_;
};

} // namespace ukey::daemon
