// The local socket: JSON lines over a Unix stream socket, served from the
// daemon's epoll loop (docs/ukeyd.md, "The socket"). Every socket is
// non-blocking and buffers are bounded, so no client can stall the daemon or
// make it grow without bound.
#pragma once

#include "admission.h"
#include "token/peer_access.h"
#include "token/result.h"

#include <nlohmann/json.hpp>

#include <sys/types.h>

#include <filesystem>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace ukey::daemon {

class Server {
public:
    // Answers a request other than subscribe ({"ok":...}).
    // A request's answer, knowing who asks.
    using Handler = std::function<nlohmann::json(const nlohmann::json& request, uid_t uid, gid_t gid)>;
    // Whether a subscriber may get an event (service mode: only the Keys of
    // backends the user may use, docs/service-mode.md); unset: all.
    using Visible = std::function<bool(uid_t uid, gid_t gid, const nlohmann::json& event)>;

    static constexpr std::size_t max_line = 64 * 1024;
    static constexpr std::size_t max_output = 1024 * 1024;
    static constexpr std::size_t max_clients = 1024;
    // Of those, the last ones only for root and the daemon's own user: 16
    // users holding 64 connections each cannot keep root's `ukey status` out.
    static constexpr std::size_t reserved_for_root = 32;
    // Per user other than root and the daemon's own: one local user holding
    // idle connections cannot lock the others (and root) out.
    static constexpr std::size_t max_clients_per_user = 64;
    // The kernel caps it at net.core.somaxconn (4096 by default): connections
    // made while the loop is busy wait there instead of failing.
    static constexpr int listen_backlog = 4096;
    // Per user other than root and the daemon's own: new connections a
    // second, after a burst (admission.h). Over it a connection is closed at
    // once, before any other work (no user database lookup, no request).
    static constexpr double connections_per_second = 50;
    static constexpr double connection_burst = 200;
    // Connections taken from the backlog per wake-up: all that wait, up to
    // this, so a flood cannot keep the loop from its other work.
    static constexpr int max_accepts_per_wakeup = 2 * listen_backlog;

    Server(int epoll_fd, Handler h) : ep_(epoll_fd), handler_(std::move(h)) {}
    ~Server();
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    // Binds the socket, or says why not.
    Result<void> listen(const std::filesystem::path& path);
    void set_access(const std::vector<std::string>& users, const std::vector<std::string>& groups);
    void set_visible(Visible v) { visible_ = std::move(v); }
    void close_listener(); // and removes the socket file

    int listen_fd() const { return lfd_; }
    bool inherited() const { return inherited_; } // from systemd (ukeyd.socket)
    // A client's socket, or the timer that writes the refusal summaries.
    bool owns(int fd) const { return clients_.count(fd) != 0 || (fd >= 0 && fd == timer_fd_); }
    void on_accept();
    void on_client(int fd, uint32_t events);
    // Sends an event line to every subscriber that wants it.
    void publish(const nlohmann::json& event);

    std::size_t clients() const { return clients_.size(); }
    std::size_t subscribers() const;

private:
    struct Client {
        uid_t uid = 0;
        gid_t gid = 0;
        pid_t pid = 0;
        std::string in, out;
        bool subscribed = false;
        std::set<std::string> events; // empty = all
        bool want_out = false;
    };
    void handle_line(int fd, Client& c, const std::string& line);
    void send(int fd, Client& c, const std::string& line); // may drop the client
    bool flush(int fd, Client& c);                          // false: dropped
    void drop(int fd, const std::string& why);
    bool allowed(uid_t uid, gid_t gid) const;
    // Closes a connection not taken (fd -1: one already closed), and says
    // why (in aggregate).
    void refuse(int fd, uid_t uid, pid_t pid, const std::string& why);
    // A warning about `uid`'s connections, through refusals_.
    void warn(uid_t uid, const std::string& line, const std::string& reason);
    void arm_timer();

    int ep_;
    Handler handler_;
    Visible visible_;
    int lfd_ = -1;
    bool inherited_ = false; // lfd_ came from systemd (ukeyd.socket)
    std::filesystem::path path_;
    std::map<int, Client> clients_;
    std::map<uid_t, std::size_t> per_user_; // clients_ by uid
    ConnectionBudget budget_{connections_per_second, connection_burst};
    RefusalLog refusals_;
    int timer_fd_ = -1;
    int spare_fd_ = -1; // given up to accept (and close) a connection when out of descriptors
    AccessList allow_; // [daemon] allow_users, allow_groups
    bool restricted_ = false;
};

// One reply line for an error.
nlohmann::json error_reply(const std::string& message);

} // namespace ukey::daemon
