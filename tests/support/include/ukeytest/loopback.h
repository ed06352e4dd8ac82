// A TCP socket listening on 127.0.0.1, on a port the kernel picks: for the
// tests' small servers (the SCEP fuzz targets' HTTP, cli.doctor's CRL).
// Header-only, so that tools which link nothing else can use it.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

namespace ukeytest {

// The listening socket (close-on-exec), its port in `port`; -1 on failure.
inline int listen_on_loopback(unsigned short& port)
{
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || listen(fd, 16) != 0 ||
        getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    port = ntohs(a.sin_port);
    return fd;
}

} // namespace ukeytest
