#include "unix_listener.h"

#include <cerrno>
#include <cstring>
#include <string>

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

} // namespace

Result<int> listen_unix(const std::filesystem::path& path, int backlog, const char* setting)
{
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
    return fd;
}

} // namespace ukey::daemon
