// sockpoke: raw clients of ukeyd's socket for tests/daemon/socket_abuse.sh.
//
//   sockpoke SOCK lines TIMEOUT_MS        each stdin line is sent as it is (plus
//                                         "\n") on one connection; one reply line
//                                         is read per request and printed
//   sockpoke SOCK big BYTES TIMEOUT_MS    BYTES of 'x' without a newline; prints
//                                         the reply lines, then "closed" or "open"
//   sockpoke SOCK flood N HOLD_MS         N status requests, never reads; holds the
//                                         connection, prints "closed" or "open"
//   sockpoke SOCK slow N HOLD_MS          N subscribers that never read (1 KiB
//                                         receive buffers); after HOLD_MS (or
//                                         SIGUSR1) prints "slow: N, closed by ukeyd: K"
//   sockpoke SOCK many N EXPECT TIMEOUT_MS  N subscribers that read; ends when each
//                                         has EXPECT events; prints "many: N min A max B";
//                                         exit 1 if one got fewer before TIMEOUT_MS
//   sockpoke SOCK halfopen N HOLD_MS      N connections: idle, half a request line,
//                                         or a request then shutdown(SHUT_WR) and no
//                                         reading, in turn; held HOLD_MS
//   sockpoke SOCK status                  one status round trip; prints its ms
//   sockpoke SOCK churn N                 N times connect and close at once (a
//                                         flood); prints "churn: N connected C
//                                         failed F" (a failed connect is no error)
//
// Every mode writes "ready" to stderr once its connections are set up.
// Exit: 0 done, 1 an expectation failed, 2 usage or connect failure.
#include <algorithm>
#include <cerrno>
#include <csignal>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

namespace {

using Clock = std::chrono::steady_clock;
std::string sock_path;
long ms_since(Clock::time_point t0);
volatile sig_atomic_t go = 0; // SIGUSR1: stop holding now
// How long a reply to subscribe or status may take: the daemon answers at
// once, so this only ends a client whose reply never comes. It is above
// socket_abuse.sh's own 10 s bound on a status round trip, which must be
// the one that fails (and logs the time).
constexpr int kReplyMs = 30000;

void on_usr1(int)
{
    go = 1;
}

// Holds until hold_ms have passed since t0, or SIGUSR1.
void hold(Clock::time_point t0, long hold_ms)
{
    while (!go && ms_since(t0) < hold_ms)
        usleep(20000);
}

long ms_since(Clock::time_point t0)
{
    return long(std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count());
}

int connect_or_die(int rcvbuf = 0)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        perror("socket");
        exit(2);
    }
    if (rcvbuf > 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strncpy(a.sun_path, sock_path.c_str(), sizeof a.sun_path - 1);
    if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        fprintf(stderr, "sockpoke: connect %s: %s\n", sock_path.c_str(), strerror(errno));
        exit(2);
    }
    return fd;
}

bool send_all(int fd, const std::string& s)
{
    size_t done = 0;
    while (done < s.size()) {
        ssize_t n = send(fd, s.data() + done, s.size() - done, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        done += size_t(n);
    }
    return true;
}

struct Reader {
    int fd;
    std::string buf;
    bool eof = false;
    // Reads what is there within timeout_ms; false on timeout.
    bool fill(int timeout_ms)
    {
        pollfd p{fd, POLLIN, 0};
        int r = poll(&p, 1, timeout_ms);
        if (r <= 0)
            return false;
        char chunk[65536];
        ssize_t n = recv(fd, chunk, sizeof chunk, MSG_DONTWAIT);
        if (n <= 0) {
            if (n < 0 && (errno == EAGAIN || errno == EINTR))
                return true;
            eof = true;
            return true;
        }
        buf.append(chunk, size_t(n));
        return true;
    }
    // The next line within timeout_ms, or false (timeout or end).
    bool line(std::string& out, int timeout_ms)
    {
        auto t0 = Clock::now();
        for (;;) {
            auto nl = buf.find('\n');
            if (nl != std::string::npos) {
                out = buf.substr(0, nl);
                buf.erase(0, nl + 1);
                return true;
            }
            if (eof)
                return false;
            int left = timeout_ms - int(ms_since(t0));
            if (left <= 0 || !fill(left))
                return false;
        }
    }
};

// closed(fd): drains what is there; true if the peer closed the connection.
bool closed(int fd)
{
    char chunk[65536];
    for (;;) {
        ssize_t n = recv(fd, chunk, sizeof chunk, MSG_DONTWAIT);
        if (n > 0)
            continue;
        if (n == 0)
            return true;
        if (errno == EINTR)
            continue;
        return errno != EAGAIN && errno != EWOULDBLOCK;
    }
}

int mode_lines(int timeout_ms)
{
    int fd = connect_or_die();
    Reader r{fd, {}};
    std::string req, reply;
    fprintf(stderr, "ready\n");
    while (std::getline(std::cin, req)) {
        if (!send_all(fd, req + "\n")) {
            printf("send failed: %s\n", strerror(errno));
            return 1;
        }
        auto t0 = Clock::now();
        if (!r.line(reply, timeout_ms)) {
            printf("%s\n", r.eof ? "closed" : "timeout");
            return 1;
        }
        printf("%s\n", reply.c_str());
        fprintf(stderr, "reply in %ld ms\n", ms_since(t0));
        fflush(stdout);
    }
    return 0;
}

int mode_big(size_t bytes, int timeout_ms)
{
    int fd = connect_or_die();
    fprintf(stderr, "ready\n");
    std::string chunk(65536, 'x');
    size_t sent = 0;
    while (sent < bytes) {
        size_t n = std::min(chunk.size(), bytes - sent);
        ssize_t w = send(fd, chunk.data(), n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break; // the daemon closed the connection: EPIPE/ECONNRESET
        sent += size_t(w);
    }
    fprintf(stderr, "sent %zu of %zu bytes\n", sent, bytes);
    Reader r{fd, {}};
    std::string line;
    while (r.line(line, timeout_ms))
        printf("%s\n", line.c_str());
    printf("%s\n", r.eof ? "closed" : "open");
    return 0;
}

int mode_flood(int n, int hold_ms)
{
    int fd = connect_or_die(1024);
    std::string req;
    for (int i = 0; i < n; ++i)
        req += "{\"request\":\"status\"}\n";
    int fl = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    size_t done = 0;
    auto t0 = Clock::now();
    fprintf(stderr, "ready\n");
    while (done < req.size() && ms_since(t0) < hold_ms) {
        ssize_t w = send(fd, req.data() + done, req.size() - done, MSG_NOSIGNAL);
        if (w > 0) {
            done += size_t(w);
            continue;
        }
        if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
            usleep(10000);
            continue;
        }
        break;
    }
    fprintf(stderr, "sent %zu of %zu bytes in %ld ms\n", done, req.size(), ms_since(t0));
    hold(t0, hold_ms);
    printf("%s\n", closed(fd) ? "closed" : "open");
    return 0;
}

int mode_slow(int n, int hold_ms)
{
    std::vector<int> fds;
    for (int i = 0; i < n; ++i) {
        int fd = connect_or_die(1024);
        Reader r{fd, {}};
        std::string line;
        send_all(fd, "{\"request\":\"subscribe\"}\n");
        if (!r.line(line, kReplyMs)) {
            fprintf(stderr, "sockpoke: no reply to subscribe\n");
            return 1;
        }
        fds.push_back(fd);
    }
    fprintf(stderr, "ready\n");
    hold(Clock::now(), hold_ms);
    int gone = 0;
    for (int fd : fds)
        gone += closed(fd);
    printf("slow: %d, closed by ukeyd: %d\n", n, gone);
    return 0;
}

int mode_many(int n, int expect, int timeout_ms)
{
    std::vector<Reader> rs;
    std::vector<int> counts(size_t(n), 0);
    for (int i = 0; i < n; ++i) {
        int fd = connect_or_die();
        rs.push_back(Reader{fd, {}});
        std::string line;
        send_all(fd, "{\"request\":\"subscribe\"}\n");
        if (!rs.back().line(line, kReplyMs) || line.find("\"subscribed\":true") == std::string::npos) {
            fprintf(stderr, "sockpoke: subscriber %d: no subscribe reply (%s)\n", i, line.c_str());
            return 1;
        }
    }
    fprintf(stderr, "ready\n");
    auto t0 = Clock::now();
    std::vector<pollfd> ps(static_cast<size_t>(n));
    for (;;) {
        int done = 0;
        for (int i = 0; i < n; ++i)
            done += counts[size_t(i)] >= expect;
        if (done == n)
            break;
        int left = timeout_ms - int(ms_since(t0));
        if (left <= 0)
            break;
        for (int i = 0; i < n; ++i)
            ps[size_t(i)] = pollfd{rs[size_t(i)].fd, POLLIN, 0};
        if (poll(ps.data(), nfds_t(n), left) <= 0)
            continue;
        for (int i = 0; i < n; ++i) {
            if (!(ps[size_t(i)].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            Reader& r = rs[size_t(i)];
            r.fill(0);
            size_t nl;
            while ((nl = r.buf.find('\n')) != std::string::npos) {
                ++counts[size_t(i)];
                r.buf.erase(0, nl + 1);
            }
            if (r.eof) {
                fprintf(stderr, "sockpoke: subscriber %d: ukeyd closed the connection\n", i);
                return 1;
            }
        }
    }
    int lo = *std::min_element(counts.begin(), counts.end());
    int hi = *std::max_element(counts.begin(), counts.end());
    printf("many: %d min %d max %d\n", n, lo, hi);
    return lo >= expect ? 0 : 1;
}

int mode_halfopen(int n, int hold_ms)
{
    std::vector<int> fds;
    for (int i = 0; i < n; ++i) {
        int fd = connect_or_die(1024);
        switch (i % 3) {
        case 0: // idle
            break;
        case 1: // half a request line, never finished
            send_all(fd, "{\"request\":\"sta");
            break;
        case 2: // a request, then no more writing and no reading
            send_all(fd, "{\"request\":\"status\"}\n");
            shutdown(fd, SHUT_WR);
            break;
        }
        fds.push_back(fd);
    }
    fprintf(stderr, "ready\n");
    usleep(useconds_t(hold_ms) * 1000);
    int gone = 0;
    for (int fd : fds)
        gone += closed(fd);
    printf("halfopen: %d, closed by ukeyd: %d\n", n, gone);
    return 0;
}

int mode_status()
{
    auto t0 = Clock::now();
    int fd = connect_or_die();
    Reader r{fd, {}};
    std::string line;
    send_all(fd, "{\"request\":\"status\"}\n");
    if (!r.line(line, kReplyMs) || line.find("\"ok\":true") == std::string::npos) {
        printf("no status reply\n");
        return 1;
    }
    printf("%ld\n", ms_since(t0));
    return 0;
}

int mode_churn(int n)
{
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strncpy(a.sun_path, sock_path.c_str(), sizeof a.sun_path - 1);
    int connected = 0, failed = 0;
    fprintf(stderr, "ready\n");
    for (int i = 0; i < n; ++i) {
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            perror("socket");
            return 2;
        }
        if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0)
            ++connected;
        else
            ++failed;
        close(fd);
    }
    printf("churn: %d connected %d failed %d\n", n, connected, failed);
    return 0;
}

} // namespace

int main(int argc, char** argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: sockpoke SOCK MODE ARGS... (see the source)\n");
        return 2;
    }
    sock_path = argv[1];
    signal(SIGUSR1, on_usr1);
    const std::string mode = argv[2];
    auto arg = [&](int i) {
        if (i >= argc) {
            fprintf(stderr, "sockpoke %s: missing argument %d\n", mode.c_str(), i - 2);
            exit(2);
        }
        return std::atol(argv[i]);
    };
    if (mode == "lines")
        return mode_lines(int(arg(3)));
    if (mode == "big")
        return mode_big(size_t(arg(3)), int(arg(4)));
    if (mode == "flood")
        return mode_flood(int(arg(3)), int(arg(4)));
    if (mode == "slow")
        return mode_slow(int(arg(3)), int(arg(4)));
    if (mode == "many")
        return mode_many(int(arg(3)), int(arg(4)), int(arg(5)));
    if (mode == "halfopen")
        return mode_halfopen(int(arg(3)), int(arg(4)));
    if (mode == "status")
        return mode_status();
    if (mode == "churn")
        return mode_churn(int(arg(3)));
    fprintf(stderr, "sockpoke: unknown mode %s\n", mode.c_str());
    return 2;
}
