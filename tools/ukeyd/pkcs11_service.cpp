#include "pkcs11_service.h"

#include "child.h"
#include "clock.h"
#include "unix_listener.h"
#include "token/log.h"
#include "token/peer_access.h"

#include <cerrno>
#include <csignal>
#include <cstring>

#include <fcntl.h>

#include <linux/capability.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace ukey::daemon {

Pkcs11Service::~Pkcs11Service()
{
    close_listener();
    if (spare_fd_ >= 0)
        close(spare_fd_);
}

void Pkcs11Service::close_listener()
{
    refusals_.flush(mono_ms(), true);
    if (lfd_ < 0)
        return;
    epoll_ctl(ep_, EPOLL_CTL_DEL, lfd_, nullptr);
    close(lfd_);
    lfd_ = -1;
    if (!inherited_)
        unlink(path_.c_str());
}

bool Pkcs11Service::configure(const ToolConfig& cfg, const std::filesystem::path& config_file)
{
    if (!cfg.service.enabled) {
        close_listener();
        return true;
    }
    // One count per Key: a module listed twice would count its Keys twice.
    if (auto twice = backends_sharing_a_module(cfg); !twice.empty()) {
        log::error("ukeyd: [service] cannot serve this config: backends " + twice +
                   ", which would count each Key's PIN tries twice; keep one");
        close_listener();
        return false;
    }
    run_as_.clear();
    child_env_.clear();
    if (geteuid() == 0) {
        // The stock ukeyd.service drops every capability: a root ukeyd
        // there could not become the service user in any child.
        if (prctl(PR_CAPBSET_READ, CAP_SETUID) != 1 || prctl(PR_CAPBSET_READ, CAP_SETGID) != 1) {
            log::error("ukeyd: [service] ukeyd runs as root without CAP_SETUID/CAP_SETGID, so its serving children "
                       "cannot become the service user: run ukeyd as the service user (the service-mode drop-in, "
                       "docs/service-mode.md)");
            close_listener();
            return false;
        }
        auto as = service_user_ids(cfg.service.user);
        if (!as || as->uid == 0) {
            log::error("ukeyd: [service] user '" + cfg.service.user + "' is not a user here (create it, e.g. with "
                       "systemd-sysusers, or name a uid:gid)");
            close_listener();
            return false;
        }
        run_as_ = std::to_string(as->uid) + ":" + std::to_string(as->gid);
        // Its children read the config itself: ukeyd's private copy of it
        // (its $UKEY_CONF) is not the service user's to read. systemd's
        // LISTEN_* are ukeyd's alone (unix_listener.cpp drops them once read).
        for (char** e = environ; *e; ++e)
            if (std::strncmp(*e, "UKEY_CONF=", 10) != 0 && std::strncmp(*e, "LISTEN_", 7) != 0)
                child_env_.emplace_back(*e);
        child_env_.push_back("UKEY_CONF=" + config_file.string());
    }
    max_per_user_ = cfg.service.max_per_user;
    if (lfd_ >= 0 && path_ == cfg.service.socket)
        return true;
    close_listener();
    auto l = listen_unix(cfg.service.socket, 256, "[service] socket");
    if (!l) {
        log::error("ukeyd: " + l.error().message);
        return false;
    }
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = l->fd;
    epoll_ctl(ep_, EPOLL_CTL_ADD, l->fd, &ev);
    lfd_ = l->fd;
    if (spare_fd_ < 0)
        spare_fd_ = open("/dev/null", O_RDONLY | O_CLOEXEC);
    inherited_ = l->inherited;
    path_ = cfg.service.socket;
    log::info("ukeyd: serving Keys over p11-kit's RPC on " + path_.string() +
              (inherited_ ? " (socket from systemd)" : "") +
              (run_as_.empty() ? std::string() : " (as " + cfg.service.user + ")"));
    return true;
}

void Pkcs11Service::refuse(int fd, uid_t uid, pid_t pid, const std::string& why)
{
    if (fd >= 0)
        close(fd);
    refusals_.note(uid,
                   "ukeyd: [service] refused a connection from uid " + std::to_string(uid) + " (pid " +
                       std::to_string(pid) + "): " + why,
                   "connections refused: " + why, mono_ms());
}

void Pkcs11Service::on_accept()
{
    for (int round = 0; round < 64; ++round) {
        // Blocking: the child reads it with p11-kit's server, which waits.
        Accepted a = accept_peer(lfd_, 0, spare_fd_);
        if (a.what == Accepted::retry)
            continue;
        if (a.what == Accepted::dropped) {
            refuse(-1, a.peer.uid, a.peer.pid, "ukeyd is out of file descriptors");
            continue;
        }
        if (a.what == Accepted::none) {
            if (a.error != EAGAIN && a.error != EWOULDBLOCK)
                log::warning(std::string("ukeyd: [service] accept: ") + strerror(a.error));
            return;
        }
        const int fd = a.fd;
        const ucred cred = a.peer;
        const bool privileged = cred.uid == 0 || cred.uid == geteuid();
        if (!budget_.take(cred.uid, mono_ms())) {
            refuse(fd, cred.uid, cred.pid, "it connects too often");
            continue;
        }
        const auto mine = per_user_.find(cred.uid);
        if (!privileged && mine != per_user_.end() && mine->second >= max_per_user_) {
            refuse(fd, cred.uid, cred.pid,
                   "it already has " + std::to_string(max_per_user_) + " connections ([service] max_per_user)");
            continue;
        }
        if (children_.size() >= (privileged ? max_children : max_children - reserved_for_root)) {
            refuse(fd, cred.uid, cred.pid, "already " + std::to_string(max_children) + " connections");
            continue;
        }
        // Which Keys the peer sees is the module's choice in the child
        // (token/peer_access.h): a user with none is served an empty list.
        std::vector<std::string> argv{self_exe_, "--serve-pkcs11",
                                      std::to_string(cred.uid) + ":" + std::to_string(cred.gid) + ":" +
                                          std::to_string(cred.pid)};
        if (!run_as_.empty()) {
            argv.push_back("--serve-as");
            argv.push_back(run_as_);
        }
        const Spawned s = spawn(argv, child_env_.empty() ? nullptr : &child_env_, false, false, fd);
        close(fd);
        if (s.pid < 0) {
            log::warning(std::string("ukeyd: [service] cannot start a serving child: ") + strerror(s.error));
            continue;
        }
        children_.emplace(s.pid, cred.uid);
        ++per_user_[cred.uid];
        log::debug("ukeyd: [service] serving uid " + std::to_string(cred.uid) + " (pid " + std::to_string(cred.pid) +
                   ") in pid " + std::to_string(s.pid));
    }
}

bool Pkcs11Service::on_exit(pid_t pid, int status)
{
    auto it = children_.find(pid);
    if (it == children_.end())
        return false;
    if (auto u = per_user_.find(it->second); u != per_user_.end() && --u->second == 0)
        per_user_.erase(u);
    if (WIFSIGNALED(status))
        log::warning("ukeyd: [service] the serving child " + std::to_string(pid) + " of uid " +
                     std::to_string(it->second) + " ended by signal " + std::to_string(WTERMSIG(status)));
    children_.erase(it);
    return true;
}

void Pkcs11Service::stop_all()
{
    close_listener();
    for (const auto& [pid, uid] : children_)
        kill(pid, SIGTERM);
}

} // namespace ukey::daemon
