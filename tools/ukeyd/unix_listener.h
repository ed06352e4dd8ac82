// A listening Unix socket for ukeyd: its JSON socket (server.*) and, in
// service mode, the PKCS#11 one (pkcs11_service.*). Both are open to every
// local user: access is decided per connection with SO_PEERCRED.
#pragma once

#include "token/result.h"

#include <filesystem>

#include <sys/socket.h>

namespace ukey::daemon {

// A listening socket on `path`: the one systemd passed (socket activation,
// ukeyd.socket: LISTEN_PID/LISTEN_FDS, matched by path) if there is one,
// else bound here (non-blocking, close-on-exec), creating its folders
// (0755). A stale socket file is replaced; one a running process answers
// on is not. `setting` names the config key, for the error.
struct Listener {
    int fd = -1;
    bool inherited = false; // systemd's: its file is not ours to remove
};
Result<Listener> listen_unix(const std::filesystem::path& path, int backlog, const char* setting);
// One connection taken off a listening socket, with its peer's
// credentials (SO_PEERCRED).
struct Accepted {
    enum What {
        none,      // nothing waiting (or accept failed: `error`)
        retry,     // interrupted, or the peer left: try again
        connected, // fd and peer
        // Out of file descriptors: the connection was taken with the spare
        // descriptor and closed (left in the backlog it would wake the loop
        // again at once, for ever); peer says whose it was.
        dropped,
    } what = none;
    int fd = -1;
    ucred peer{};
    int error = 0;
};
// flags: accept4's (SOCK_CLOEXEC always); spare_fd: a descriptor kept open
// for the out-of-descriptors case, reopened here.
Accepted accept_peer(int listen_fd, int flags, int& spare_fd);

// Closes (with a warning) the sockets systemd passed that no listen_unix
// took: a client connecting there would wait for ever.
void close_unclaimed_passed_sockets();

} // namespace ukey::daemon
