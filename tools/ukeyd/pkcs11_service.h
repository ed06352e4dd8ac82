// Service mode (docs/service-mode.md): ukeyd serves Keys to applications on
// a second socket, [service] socket, in the protocol of p11-kit's RPC
// (what p11-kit-client.so speaks). Per accepted connection: the peer's
// uid from SO_PEERCRED, the connection budget and per-user cap, then a
// serving child (`ukeyd --serve-pkcs11`, serve_child.*) that runs as the
// service user and shows the peer only the backends it may use.
#pragma once

#include "admission.h"
#include "tool_config.h"

#include <sys/types.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace ukey::daemon {

class Pkcs11Service {
public:
    // Over it, a user's (other than root's) new connections are closed at
    // once (admission.h).
    static constexpr double connections_per_second = 20;
    static constexpr double connection_burst = 64;
    static constexpr std::size_t max_children = 512;
    // Of those, the last ones only for root and the daemon's own user: idle
    // connections of other users cannot keep the admin from unlocking a Key.
    static constexpr std::size_t reserved_for_root = 32;

    Pkcs11Service(int epoll_fd, std::string self_exe) : ep_(epoll_fd), self_exe_(std::move(self_exe)) {}
    ~Pkcs11Service();
    Pkcs11Service(const Pkcs11Service&) = delete;
    Pkcs11Service& operator=(const Pkcs11Service&) = delete;

    // Starts, stops or keeps serving as `cfg` says; false (logged) when it
    // should serve and cannot. `config_file`: what the children read when
    // they run as another user (the daemon's private copy is not theirs).
    bool configure(const ToolConfig& cfg, const std::filesystem::path& config_file);
    int listen_fd() const { return lfd_; }
    void on_accept();
    // Logs the refusal summaries that are due (the loop calls it at every
    // wake-up, and wakes by next_deadline()).
    void on_tick(int64_t now_ms) { refusals_.flush(now_ms); }
    int64_t next_deadline() const { return refusals_.deadline(); } // monotonic ms; 0: none
    // A child ended; false if it was not one of ours.
    bool on_exit(pid_t pid, int status);
    // SIGTERM to every serving child (their peers get an error and may
    // connect again once ukeyd is back).
    void stop_all();
    std::size_t children() const { return children_.size(); }

private:
    void close_listener();
    // Closes fd (if any: -1 for one already closed) and logs why.
    void refuse(int fd, uid_t uid, pid_t pid, const std::string& why);

    int ep_;
    std::string self_exe_;
    int lfd_ = -1;
    bool inherited_ = false; // from systemd (ukeyd.socket)
    int spare_fd_ = -1;      // given up to take (and close) a connection when out of descriptors
    std::filesystem::path path_;
    std::string run_as_;              // "uid:gid", or empty to stay ukeyd's user
    // The children's environment when they become the service user; empty:
    // ukeyd's own (its $UKEY_CONF).
    std::vector<std::string> child_env_;
    unsigned max_per_user_ = 32;
    std::map<pid_t, uid_t> children_;
    std::map<uid_t, std::size_t> per_user_;
    ConnectionBudget budget_{connections_per_second, connection_burst};
    RefusalLog refusals_;
};

} // namespace ukey::daemon
