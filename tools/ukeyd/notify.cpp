#include "notify.h"

#include <cstddef>
#include <cstdlib>
#include <cstring>

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

namespace ukey::daemon {

void sd_notify(const std::string& state)
{
    const char* path = secure_getenv("NOTIFY_SOCKET");
    if (!path || (path[0] != '/' && path[0] != '@') || std::strlen(path) >= sizeof(sockaddr_un::sun_path))
        return;
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strcpy(a.sun_path, path);
    if (a.sun_path[0] == '@')
        a.sun_path[0] = '\0'; // an abstract socket
    socklen_t len = socklen_t(offsetof(sockaddr_un, sun_path) + std::strlen(path));
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return;
    sendto(fd, state.data(), state.size(), MSG_NOSIGNAL, reinterpret_cast<sockaddr*>(&a), len);
    close(fd);
}

} // namespace ukey::daemon
