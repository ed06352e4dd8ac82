#include "server.h"

#include "clock.h"
#include "unix_listener.h"
#include "token/escape.h"
#include "token/log.h"

#include <cerrno>
#include <cstring>

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <unistd.h>

namespace ukey::daemon {

using nlohmann::json;

json error_reply(const std::string& message)
{
    return json{{"ok", false}, {"error", "bad-request"}, {"message", message}};
}

namespace {


std::string dump(const json& j)
{
    // Valid UTF-8 (invalid bytes replaced), and DEL, C1 and bidi controls
    // from Keys written as \u escapes: a client that prints a value raw
    // cannot be made to run terminal sequences (docs/security.md).
    return escape::printable_json(j.dump(-1, ' ', false, json::error_handler_t::replace)) + "\n";
}



} // namespace

Server::~Server()
{
    for (auto& [fd, c] : clients_)
        close(fd);
    close_listener();
    if (timer_fd_ >= 0)
        close(timer_fd_);
    if (spare_fd_ >= 0)
        close(spare_fd_);
}

Result<void> Server::listen(const std::filesystem::path& path)
{
    auto listening = listen_unix(path, listen_backlog, "[daemon] socket");
    if (!listening)
        return listening.error();
    const int fd = listening->fd;
    inherited_ = listening->inherited;
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    epoll_ctl(ep_, EPOLL_CTL_ADD, fd, &ev);
    lfd_ = fd;
    path_ = path;
    if (timer_fd_ < 0 && (timer_fd_ = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK)) >= 0) {
        ev.data.fd = timer_fd_;
        epoll_ctl(ep_, EPOLL_CTL_ADD, timer_fd_, &ev);
    }
    if (spare_fd_ < 0)
        spare_fd_ = open("/dev/null", O_RDONLY | O_CLOEXEC);
    return {};
}

void Server::close_listener()
{
    refusals_.flush(mono_ms(), true);
    if (lfd_ < 0)
        return;
    close(lfd_);
    lfd_ = -1;
    if (!inherited_) // systemd's socket file stays for the next start
        unlink(path_.c_str());
}

void Server::set_access(const std::vector<std::string>& users, const std::vector<std::string>& groups)
{
    restricted_ = !users.empty() || !groups.empty();
    allow_ = AccessList(users, groups);
    for (const auto& u : allow_.unknown())
        log::warning("ukeyd: [daemon] allow_users/allow_groups name " + u + ", not known here");
}

bool Server::allowed(uid_t uid, gid_t gid) const
{
    return !restricted_ || uid == 0 || uid == geteuid() || allow_.allows(uid, gid);
}

void Server::warn(uid_t uid, const std::string& line, const std::string& reason)
{
    refusals_.note(uid, line, reason, mono_ms());
    arm_timer();
}

void Server::refuse(int fd, uid_t uid, pid_t pid, const std::string& why)
{
    if (fd >= 0)
        close(fd);
    warn(uid, "ukeyd: refused a connection from uid " + std::to_string(uid) + " (pid " + std::to_string(pid) + "): " + why,
         "connections refused: " + why);
}

void Server::arm_timer()
{
    if (timer_fd_ < 0)
        return;
    const int64_t at = refusals_.deadline();
    itimerspec its{};
    if (at > 0) {
        // Absolute monotonic time (mono_ms is CLOCK_MONOTONIC); never 0,
        // which would disarm.
        its.it_value.tv_sec = at / 1000;
        its.it_value.tv_nsec = long(at % 1000) * 1000000 + 1;
    }
    timerfd_settime(timer_fd_, at > 0 ? TFD_TIMER_ABSTIME : 0, &its, nullptr);
}

void Server::on_accept()
{
    // Every connection waiting is taken off the backlog (refused ones are
    // closed at once), so the backlog does not stay full for root.
    for (int round = 0; round < max_accepts_per_wakeup; ++round) {
        Accepted a = accept_peer(lfd_, SOCK_NONBLOCK, spare_fd_);
        if (a.what == Accepted::retry)
            continue;
        if (a.what == Accepted::dropped) {
            refuse(-1, a.peer.uid, a.peer.pid, "ukeyd is out of file descriptors");
            continue;
        }
        if (a.what == Accepted::none) {
            if (a.error != EAGAIN && a.error != EWOULDBLOCK)
                warn(RefusalLog::nobody, std::string("ukeyd: accept: ") + strerror(a.error), "accept failed");
            return;
        }
        const int fd = a.fd;
        const ucred cred = a.peer;
        // First the rate, which costs nothing: a flood is turned away
        // before the user database is asked.
        if (!budget_.take(cred.uid, mono_ms())) {
            refuse(fd, cred.uid, cred.pid,
                   "it connects too often (over " + std::to_string(int(connections_per_second)) + " a second)");
            continue;
        }
        if (!allowed(cred.uid, cred.gid)) {
            refuse(fd, cred.uid, cred.pid, "not in allow_users/allow_groups");
            continue;
        }
        const auto mine = per_user_.find(cred.uid);
        if (cred.uid != 0 && cred.uid != geteuid() && mine != per_user_.end() && mine->second >= max_clients_per_user) {
            refuse(fd, cred.uid, cred.pid, "it already has " + std::to_string(max_clients_per_user) + " connections");
            continue;
        }
        const bool privileged = cred.uid == 0 || cred.uid == geteuid();
        if (clients_.size() >= (privileged ? max_clients : max_clients - reserved_for_root)) {
            refuse(fd, cred.uid, cred.pid, "already " + std::to_string(clients_.size()) + " clients");
            continue;
        }
        epoll_event ev{};
        ev.events = EPOLLIN | EPOLLRDHUP;
        ev.data.fd = fd;
        if (epoll_ctl(ep_, EPOLL_CTL_ADD, fd, &ev) != 0) {
            close(fd);
            continue;
        }
        Client c;
        c.uid = cred.uid;
        c.gid = cred.gid;
        c.pid = cred.pid;
        clients_.emplace(fd, std::move(c));
        ++per_user_[cred.uid];
    }
}

void Server::drop(int fd, const std::string& why)
{
    auto it = clients_.find(fd);
    if (it == clients_.end())
        return;
    const uid_t uid = it->second.uid;
    if (!why.empty())
        warn(uid, "ukeyd: disconnected pid " + std::to_string(it->second.pid) + " (uid " + std::to_string(uid) +
                      "): " + why,
             "disconnected: " + why);
    epoll_ctl(ep_, EPOLL_CTL_DEL, fd, nullptr);
    close(fd);
    clients_.erase(it);
    if (auto u = per_user_.find(uid); u != per_user_.end() && --u->second == 0)
        per_user_.erase(u);
}

bool Server::flush(int fd, Client& c)
{
    while (!c.out.empty()) {
        ssize_t n = ::send(fd, c.out.data(), c.out.size(), MSG_NOSIGNAL);
        if (n > 0) {
            c.out.erase(0, size_t(n));
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        drop(fd, ""); // the client went away
        return false;
    }
    const bool want = !c.out.empty();
    if (want != c.want_out) {
        epoll_event ev{};
        ev.events = EPOLLIN | EPOLLRDHUP | (want ? EPOLLOUT : 0u);
        ev.data.fd = fd;
        epoll_ctl(ep_, EPOLL_CTL_MOD, fd, &ev);
        c.want_out = want;
    }
    return true;
}

void Server::send(int fd, Client& c, const std::string& line)
{
    if (c.out.size() + line.size() > max_output) {
        drop(fd, "it did not read its replies or events (over " + std::to_string(max_output / 1024) +
                     " KiB waiting)");
        return;
    }
    c.out += line;
    flush(fd, c);
}

void Server::handle_line(int fd, Client& c, const std::string& line)
{
    if (line.find_first_not_of(" \t\r") == std::string::npos)
        return;
    json req = json::parse(line, nullptr, false);
    if (req.is_discarded() || !req.is_object()) {
        send(fd, c, dump(error_reply("a request is one JSON object per line, such as {\"request\":\"status\"}")));
        return;
    }
    const json r = req.value("request", json());
    if (r == "subscribe") {
        std::set<std::string> events;
        if (req.contains("events")) {
            if (!req["events"].is_array()) {
                send(fd, c, dump(error_reply("\"events\" must be a list of event names")));
                return;
            }
            for (const auto& e : req["events"])
                if (e.is_string())
                    events.insert(e.get<std::string>());
        }
        c.subscribed = true;
        c.events = std::move(events);
        send(fd, c, dump(json{{"ok", true}, {"subscribed", true}}));
        return;
    }
    json reply;
    try {
        reply = handler_(req, c.uid, c.gid);
    } catch (const std::exception& e) {
        reply = json{{"ok", false}, {"error", "internal"}, {"message", e.what()}};
    }
    send(fd, c, dump(reply));
}

void Server::on_client(int fd, uint32_t events)
{
    if (fd == timer_fd_) {
        uint64_t expirations = 0;
        if (read(timer_fd_, &expirations, sizeof expirations) < 0 && errno != EAGAIN)
            return;
        refusals_.flush(mono_ms());
        arm_timer();
        return;
    }
    auto it = clients_.find(fd);
    if (it == clients_.end())
        return;
    Client& c = it->second;
    if (events & EPOLLOUT) {
        if (!flush(fd, c))
            return;
    }
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
        char buf[16384];
        // A bounded number of reads per wake-up, so one chatty client cannot
        // keep the loop from the others.
        for (int round = 0; round < 8; ++round) {
            ssize_t n = recv(fd, buf, sizeof buf, 0);
            if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
                drop(fd, "");
                return;
            }
            if (n < 0)
                break;
            if (c.subscribed)
                continue; // a subscriber only listens: what it sends is ignored
            c.in.append(buf, size_t(n));
            std::size_t start = 0, nl;
            while ((nl = c.in.find('\n', start)) != std::string::npos) {
                handle_line(fd, c, c.in.substr(start, nl - start));
                if (!clients_.count(fd))
                    return;
                start = nl + 1;
                if (c.subscribed)
                    break;
            }
            c.in.erase(0, c.subscribed ? c.in.size() : start);
            if (c.in.size() > max_line) {
                std::string reply = dump(error_reply("request line longer than " + std::to_string(max_line) +
                                                     " bytes; closing the connection"));
                ::send(fd, reply.data(), reply.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
                drop(fd, "request line over " + std::to_string(max_line / 1024) + " KiB");
                return;
            }
        }
    }
}

void Server::publish(const json& event)
{
    const std::string name = event.value("event", std::string());
    const std::string line = dump(event);
    std::vector<int> fds;
    for (auto& [fd, c] : clients_)
        if (c.subscribed && (c.events.empty() || c.events.count(name)) && (!visible_ || visible_(c.uid, c.gid, event)))
            fds.push_back(fd);
    for (int fd : fds) {
        auto it = clients_.find(fd);
        if (it != clients_.end())
            send(fd, it->second, line);
    }
}

std::size_t Server::subscribers() const
{
    std::size_t n = 0;
    for (const auto& [fd, c] : clients_)
        n += c.subscribed;
    return n;
}

} // namespace ukey::daemon
