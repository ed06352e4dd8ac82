// Fuzz target: ukeyd's request reading (tools/ukeyd/server.cpp). The line
// parser (Server::handle_line) is private, so the input goes the way a local
// user's bytes do: through a real Unix socket to Server::on_accept and
// Server::on_client, driven by epoll as in the daemon's loop. The input is
// the byte stream a client sends (any number of lines, partial lines,
// subscribe requests); the handler answers like Daemon::answer, echoing the
// request name, and subscribers get an event through publish().
#include "token/log.h"
#include "server.h"

#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

using ukey::daemon::Server;
using nlohmann::json;

namespace {

json answer(const json& req, uid_t, gid_t)
{
    const json r = req.value("request", json());
    if (r == "status")
        return json{{"ok", true}, {"status", {{"version", "fuzz"}, {"keys", json::array()}}}};
    if (r == "list")
        return json{{"ok", true}, {"keys", json::array()}};
    return ukey::daemon::error_reply(r.is_string() ? "unknown request '" + r.get<std::string>() +
                                                         "': status, list or subscribe"
                                                   : "a request names \"request\": status, list or subscribe");
}

struct Daemon {
    int ep = -1;
    Server* server = nullptr;
    sockaddr_un addr{};
};

Daemon& daemon_state()
{
    static Daemon* d = [] {
        ukey::log::configure({ukey::log::Level::error, true, false}); // no syslog from a fuzzer
        auto* d = new Daemon;
        char dir[] = "/tmp/ukey-fuzz-XXXXXX";
        if (!mkdtemp(dir))
            std::abort();
        const std::string path = std::string(dir) + "/ukeyd.sock";
        d->ep = epoll_create1(EPOLL_CLOEXEC);
        d->server = new Server(d->ep, answer);
        if (auto e = d->server->listen(path); !e) {
            std::fprintf(stderr, "ukeyd_request: %s\n", e.error().message.c_str());
            std::abort();
        }
        d->addr.sun_family = AF_UNIX;
        std::strncpy(d->addr.sun_path, path.c_str(), sizeof d->addr.sun_path - 1);
        // The socket file and its folder go when the process ends.
        static std::string cleanup_dir = dir;
        std::atexit([] {
            std::remove((cleanup_dir + "/ukeyd.sock").c_str());
            rmdir(cleanup_dir.c_str());
        });
        return d;
    }();
    return *d;
}

// One turn of the daemon's loop, without waiting.
void turn(Daemon& d)
{
    epoll_event evs[16];
    int n = epoll_wait(d.ep, evs, 16, 0);
    for (int i = 0; i < n; ++i) {
        int fd = evs[i].data.fd;
        if (fd == d.server->listen_fd())
            d.server->on_accept();
        else if (d.server->owns(fd))
            d.server->on_client(fd, evs[i].events);
    }
}

void drain(int c)
{
    char buf[65536];
    while (recv(c, buf, sizeof buf, MSG_DONTWAIT) > 0) {
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    Daemon& d = daemon_state();
    int c = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (c < 0 || connect(c, reinterpret_cast<sockaddr*>(&d.addr), sizeof d.addr) != 0)
        std::abort();
    // Until the server took the connection.
    for (int i = 0; i < 1000 && d.server->clients() == 0; ++i)
        turn(d);
    if (d.server->clients() != 1)
        std::abort();
    std::size_t at = 0;
    bool open = true;
    for (int round = 0; round < 100000 && d.server->clients() > 0; ++round) {
        if (open && at < size) {
            ssize_t n = send(c, data + at, size - at, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (n > 0)
                at += std::size_t(n);
            else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
                open = false; // the server closed it (a line too long)
        }
        if (open && at >= size) {
            // What a subscriber would be sent, then the end of the stream.
            d.server->publish(json{{"event", "key-inserted"}, {"time_ms", 1}, {"key", {{"label", "fuzz"}}}});
            shutdown(c, SHUT_WR);
            open = false;
        }
        turn(d);
        drain(c);
    }
    if (d.server->clients() != 0) {
        std::fprintf(stderr, "ukeyd_request: the server kept a client whose stream ended\n");
        std::abort();
    }
    close(c);
    return 0;
}
