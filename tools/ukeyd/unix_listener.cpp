#include "unix_listener.h"

#include "token/log.h"

#include <algorithm>

#include <cerrno>
#include <cstring>
#include <cstdlib>
#include <string>
#include <vector>

#include <fcntl.h>

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

namespace ukey::daemon {

namespace {

Error refused(std::string why)
{
    return Error{CKR_FUNCTION_FAILED, std::move(why)};
}

bool make_dirs(const std::filesystem::path& p)
{
    std::error_code ec;
    if (std::filesystem::is_directory(p, ec))
        return true;
    if (p.has_parent_path() && p.parent_path() != p && !make_dirs(p.parent_path()))
        return false;
    return mkdir(p.c_str(), 0755) == 0 || errno == EEXIST;
}

// The sockets systemd passed this process (sd_listen_fds(3)): fds 3 to
// 3+LISTEN_FDS-1, if LISTEN_PID names us. Read once; the variables are
// then removed so that no child takes them for its own.
const std::vector<int>& passed_fds()
{
    static const std::vector<int> fds = [] {
        std::vector<int> v;
        const char* pid = secure_getenv("LISTEN_PID");
        const char* n = secure_getenv("LISTEN_FDS");
        if (pid && n && std::strtol(pid, nullptr, 10) == long(getpid())) {
            const long count = std::strtol(n, nullptr, 10);
            for (long i = 0; i < count && i < 16; ++i)
                v.push_back(3 + int(i));
        }
        unsetenv("LISTEN_PID");
        unsetenv("LISTEN_FDS");
        unsetenv("LISTEN_FDNAMES");
        return v;
    }();
    return fds;
}

std::vector<int> claimed;

// A passed listening Unix stream socket bound to `path`, or -1.
int passed_listener(const std::filesystem::path& path)
{
    for (int fd : passed_fds()) {
        if (std::find(claimed.begin(), claimed.end(), fd) != claimed.end())
            continue;
        sockaddr_un a{};
        socklen_t len = sizeof a;
        int type = 0, listening = 0;
        socklen_t tl = sizeof type, ll = sizeof listening;
        if (getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0 || a.sun_family != AF_UNIX ||
            getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) != 0 || type != SOCK_STREAM ||
            getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &ll) != 0 || !listening)
            continue;
        const std::size_t n = strnlen(a.sun_path, sizeof a.sun_path);
        if (std::string(a.sun_path, n) == path.string()) {
            fcntl(fd, F_SETFD, FD_CLOEXEC);
            fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
            claimed.push_back(fd);
            return fd;
        }
    }
    return -1;
}

} // namespace

Accepted accept_peer(int listen_fd, int flags, int& spare_fd)
{
    Accepted a;
    int fd = accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC | flags);
    if (fd < 0) {
        a.error = errno;
        if (errno == EINTR || errno == ECONNABORTED) {
            a.what = Accepted::retry;
            return a;
        }
        if ((errno != EMFILE && errno != ENFILE) || spare_fd < 0)
            return a;
        close(spare_fd);
        fd = accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC | flags);
        spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            return a;
        socklen_t len = sizeof a.peer;
        getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &a.peer, &len);
        close(fd);
        a.what = Accepted::dropped;
        return a;
    }
    socklen_t len = sizeof a.peer;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &a.peer, &len) != 0) {
        close(fd);
        a.what = Accepted::retry;
        return a;
    }
    a.fd = fd;
    a.what = Accepted::connected;
    return a;
}

void close_unclaimed_passed_sockets()
{
    for (int fd : passed_fds()) {
        if (std::find(claimed.begin(), claimed.end(), fd) != claimed.end())
            continue;
        sockaddr_un a{};
        socklen_t len = sizeof a;
        const bool named = getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0 && a.sun_family == AF_UNIX;
        log::warning("ukeyd: systemd passed a socket it does not use" +
                     (named ? " (" + std::string(a.sun_path, strnlen(a.sun_path, sizeof a.sun_path)) + ")"
                            : std::string()) +
                     ": its path is neither [daemon] socket nor, with [service] enabled, [service] socket; "
                     "shut down, so that its clients fail instead of waiting");
        // systemd keeps its own copy: closing ours alone would leave
        // clients waiting in the backlog. Shut down, it takes none.
        shutdown(fd, SHUT_RDWR);
        close(fd);
        claimed.push_back(fd);
    }
}

Result<Listener> listen_unix(const std::filesystem::path& path, int backlog, const char* setting)
{
    if (int fd = passed_listener(path); fd >= 0)
        return Listener{fd, true};
    if (path.string().size() >= sizeof(sockaddr_un::sun_path))
        return refused("the socket path " + path.string() + " is too long");
    if (!make_dirs(path.parent_path()))
        return refused("cannot create " + path.parent_path().string() + ": " + strerror(errno));
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
    // A socket file left by a daemon that died is removed; one that answers
    // belongs to a running daemon, which we must not steal from.
    struct stat st{};
    if (lstat(path.c_str(), &st) == 0) {
        if (!S_ISSOCK(st.st_mode))
            return refused(path.string() + " exists and is not a socket; remove it or choose another " + setting);
        int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        bool alive = probe >= 0 && connect(probe, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
        if (probe >= 0)
            close(probe);
        if (alive)
            return refused("another ukeyd is already running on " + path.string());
        unlink(path.c_str());
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return refused(std::string("socket: ") + strerror(errno));
    if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        auto e = refused("cannot bind " + path.string() + ": " + strerror(errno));
        close(fd);
        return e;
    }
    // Access is decided per connection with SO_PEERCRED, so the file itself
    // is open to every local user.
    chmod(path.c_str(), 0666);
    if (::listen(fd, backlog) != 0) {
        auto e = refused(std::string("listen: ") + strerror(errno));
        close(fd);
        unlink(path.c_str());
        return e;
    }
    return Listener{fd, false};
}

} // namespace ukey::daemon
