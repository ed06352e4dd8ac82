// vcard: a minimal virtual smart card for the vpcd reader driver
// (vsmartcard-vpcd), used by the pcsc-lite test harness (tests/pcsc).
//
// vpcd protocol (one TCP connection per reader slot): every message, both
// ways, is a 2-byte big-endian length followed by that many bytes.
//   vpcd -> card, 1 byte:  control. 0 power off, 1 power on, 2 reset,
//                          4 get ATR. Only "get ATR" is answered (with the ATR).
//   vpcd -> card, >1 byte: a command APDU, answered with a response APDU.
// vpcd polls the card every ~400 ms (pcscd's reader polling thread calls
// IFDHICCPresence, which sends "get ATR"): a card that stops answering, or
// whose connection closes, is "removed".
//
// Two ways to meet vpcd, chosen by its reader.conf DEVICENAME:
//   DEVICENAME /dev/null:PORT    vpcd listens on PORT (all interfaces!), the
//                                card connects:       vcard --port PORT
//   DEVICENAME 127.0.0.1:PORT    vpcd connects to the card, which listens on
//                                127.0.0.1:PORT only: vcard --listen --port PORT
//                                (vpcd 3.3 in Debian 12 aborts pcscd in this
//                                mode, FD_SET(-1); the harness uses the first
//                                one inside a private network namespace)
// The card is inserted while the connection is up. SIGTERM/SIGINT closes it
// (card removed) and exits 0. If vpcd closes the connection (pcscd stopped),
// vcard waits for the next one (the card stays "in the reader" across a pcscd
// restart) unless --once is given.
//
// Answers: SELECT (INS A4) -> 6A 82, anything else -> 6D 00.
// Exit codes: 0 terminated by signal (or --once and vpcd closed), 1 runtime
// error (e.g. --connect-timeout expired), 2 usage.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdarg>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace {

volatile std::sig_atomic_t g_stop = 0;

void on_signal(int) { g_stop = 1; }

struct Options {
    std::string host = "127.0.0.1";
    unsigned port = 0;
    bool listen = false;
    bool once = false;
    bool verbose = false;
    int connect_timeout_ms = 10000;  // connect mode: give up after this long
    std::string ready_file;          // created once the card is connected
    std::vector<std::uint8_t> atr = {0x3B, 0x80, 0x80, 0x01, 0x01};
};

Options g_opt;

long now_ms();

[[gnu::format(printf, 1, 2)]] void vlog(const char* fmt, ...) {
    if (!g_opt.verbose) return;
    std::fprintf(stderr, "%ld vcard[%d] port %u: ", now_ms(), static_cast<int>(::getpid()),
                 g_opt.port);
    va_list ap;
    va_start(ap, fmt);
    std::vfprintf(stderr, fmt, ap);
    va_end(ap);
    std::fputc('\n', stderr);
}

long now_ms() {
    using namespace std::chrono;
    return static_cast<long>(
        duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count());
}

void usage(const char* argv0) {
    std::fprintf(stderr,
                 "usage: %s --port N [--listen] [--host ADDR] [--once] [--atr HEX]\n"
                 "          [--connect-timeout-ms MS] [--ready-file PATH] [-v]\n"
                 "  --port N      vpcd slot port (connect mode) or port to listen on\n"
                 "  --listen      listen on ADDR:N and let vpcd connect (reader.conf\n"
                 "                DEVICENAME 127.0.0.1:N); default: connect to vpcd\n"
                 "  --host ADDR   IPv4 address (default 127.0.0.1)\n"
                 "  --once        exit when vpcd closes the connection\n"
                 "  --atr HEX     ATR to report (default 3B80800101)\n"
                 "  --ready-file  create PATH (containing epoch ms) when connected\n",
                 argv0);
}

std::optional<std::vector<std::uint8_t>> parse_hex(std::string_view s) {
    std::vector<std::uint8_t> out;
    int hi = -1;
    for (char c : s) {
        int v;
        if (c >= '0' && c <= '9') v = c - '0';
        else if (c >= 'a' && c <= 'f') v = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F') v = c - 'A' + 10;
        else if (c == ' ' || c == ':') continue;
        else return std::nullopt;
        if (hi < 0) hi = v;
        else { out.push_back(static_cast<std::uint8_t>(hi << 4 | v)); hi = -1; }
    }
    if (hi >= 0 || out.empty()) return std::nullopt;
    return out;
}

bool parse_args(int argc, char** argv) {
    for (int i = 1; i < argc; ++i) {
        std::string_view a = argv[i];
        auto value = [&]() -> const char* {
            if (i + 1 >= argc) return nullptr;
            return argv[++i];
        };
        if (a == "--port") {
            const char* v = value();
            if (!v) return false;
            char* end = nullptr;
            unsigned long p = std::strtoul(v, &end, 0);
            if (*end || p == 0 || p > 65535) return false;
            g_opt.port = static_cast<unsigned>(p);
        } else if (a == "--host") {
            const char* v = value();
            if (!v) return false;
            g_opt.host = v;
        } else if (a == "--listen") {
            g_opt.listen = true;
        } else if (a == "--once") {
            g_opt.once = true;
        } else if (a == "-v" || a == "--verbose") {
            g_opt.verbose = true;
        } else if (a == "--atr") {
            const char* v = value();
            if (!v) return false;
            auto atr = parse_hex(v);
            if (!atr || atr->size() > 33) return false;
            g_opt.atr = *atr;
        } else if (a == "--connect-timeout-ms") {
            const char* v = value();
            if (!v) return false;
            g_opt.connect_timeout_ms = std::atoi(v);
        } else if (a == "--ready-file") {
            const char* v = value();
            if (!v) return false;
            g_opt.ready_file = v;
        } else {
            return false;
        }
    }
    return g_opt.port != 0;
}

sockaddr_in make_addr() {
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(static_cast<std::uint16_t>(g_opt.port));
    if (inet_pton(AF_INET, g_opt.host.c_str(), &sa.sin_addr) != 1) {
        std::fprintf(stderr, "vcard: bad IPv4 address %s\n", g_opt.host.c_str());
        std::exit(2);
    }
    return sa;
}

// Waits until fd is readable, a signal arrived (returns false) or timeout_ms
// (<0: forever) passed (returns false with errno=ETIMEDOUT).
bool wait_readable(int fd, int timeout_ms) {
    pollfd p{fd, POLLIN, 0};
    for (;;) {
        if (g_stop) return false;
        int r = ::poll(&p, 1, timeout_ms);
        if (r > 0) return true;
        if (r == 0) { errno = ETIMEDOUT; return false; }
        if (errno != EINTR) return false;
    }
}

// Reads exactly n bytes; false on EOF, error or signal.
bool read_full(int fd, std::uint8_t* buf, std::size_t n) {
    std::size_t got = 0;
    while (got < n) {
        if (!wait_readable(fd, -1)) return false;
        ssize_t r = ::read(fd, buf + got, n - got);
        if (r == 0) return false;
        if (r < 0) {
            if (errno == EINTR) continue;
            return false;
        }
        got += static_cast<std::size_t>(r);
    }
    return true;
}

bool write_msg(int fd, const std::uint8_t* data, std::size_t n) {
    if (n > 0xFFFF) return false;
    std::vector<std::uint8_t> msg{static_cast<std::uint8_t>(n >> 8),
                                  static_cast<std::uint8_t>(n)};
    msg.insert(msg.end(), data, data + n);
    std::size_t off = 0;
    while (off < msg.size()) {
        ssize_t w = ::send(fd, msg.data() + off, msg.size() - off, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR) continue;
            return false;
        }
        off += static_cast<std::size_t>(w);
    }
    return true;
}

void mark_ready() {
    if (g_opt.ready_file.empty()) return;
    std::string tmp = g_opt.ready_file + ".tmp";
    if (FILE* f = std::fopen(tmp.c_str(), "w")) {
        std::fprintf(f, "%ld\n", now_ms());
        std::fclose(f);
        std::rename(tmp.c_str(), g_opt.ready_file.c_str());
    }
}

// Serves one vpcd connection until it closes (returns true) or a signal
// arrives (returns false).
bool serve(int fd) {
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    vlog("connected to vpcd");
    mark_ready();
    bool up = true;
    while (up) {
        std::uint8_t hdr[2];
        if (!read_full(fd, hdr, 2)) break;
        std::size_t len = static_cast<std::size_t>(hdr[0]) << 8 | hdr[1];
        std::vector<std::uint8_t> in(len);
        if (len && !read_full(fd, in.data(), len)) break;
        if (len == 1) {
            switch (in[0]) {
            case 0: vlog("power off"); break;
            case 1: vlog("power on"); break;
            case 2: vlog("reset"); break;
            case 4: up = write_msg(fd, g_opt.atr.data(), g_opt.atr.size()); break;
            default: vlog("unknown control byte %d", in[0]); break;
            }
            continue;
        }
        std::uint8_t sw[2] = {0x6D, 0x00};  // INS not supported
        if (len >= 4 && in[1] == 0xA4) {     // SELECT
            sw[0] = 0x6A;                    // file or application not found
            sw[1] = 0x82;
        }
        vlog("APDU of %zu bytes", len);
        up = write_msg(fd, sw, sizeof sw);
    }
    if (g_stop) return false;
    vlog("vpcd closed the connection");
    return true;
}

int run_connect() {
    const sockaddr_in sa = make_addr();
    // The timeout only applies to the first connection: once the card has been
    // in the reader it waits (until a signal) for a restarted pcscd.
    bool ever_connected = false;
    const long deadline = now_ms() + g_opt.connect_timeout_ms;
    while (!g_stop) {
        int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) { std::perror("vcard: socket"); return 1; }
        if (::connect(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) == 0) {
            ever_connected = true;
            bool closed_by_peer = serve(fd);
            ::close(fd);
            if (!closed_by_peer || g_opt.once) return 0;
            continue;  // pcscd went away: wait for it to come back
        }
        int e = errno;
        ::close(fd);
        if (!ever_connected && g_opt.connect_timeout_ms > 0 && now_ms() > deadline) {
            std::fprintf(stderr, "vcard: cannot connect to vpcd at %s:%u: %s\n",
                         g_opt.host.c_str(), g_opt.port, std::strerror(e));
            return 1;
        }
        ::usleep(50 * 1000);
    }
    return 0;
}

int run_listen() {
    const sockaddr_in sa = make_addr();
    int ls = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (ls < 0) { std::perror("vcard: socket"); return 1; }
    int one = 1;
    ::setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (::bind(ls, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) != 0) {
        std::fprintf(stderr, "vcard: cannot bind %s:%u: %s\n", g_opt.host.c_str(),
                     g_opt.port, std::strerror(errno));
        return 1;
    }
    if (::listen(ls, 1) != 0) { std::perror("vcard: listen"); return 1; }
    vlog("listening");
    while (!g_stop) {
        if (!wait_readable(ls, -1)) break;
        int fd = ::accept4(ls, nullptr, nullptr, SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR) continue;
            std::perror("vcard: accept");
            return 1;
        }
        bool closed_by_peer = serve(fd);
        ::close(fd);
        if (!closed_by_peer || g_opt.once) break;
    }
    ::close(ls);
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    if (!parse_args(argc, argv)) {
        usage(argv[0]);
        return 2;
    }
    // No SA_RESTART: a signal interrupts poll()/connect() so we notice it.
    struct sigaction sa {};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, nullptr);
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGHUP, &sa, nullptr);
    std::signal(SIGPIPE, SIG_IGN);

    vlog("started (%s mode)", g_opt.listen ? "listen" : "connect");
    int rc = g_opt.listen ? run_listen() : run_connect();
    vlog("exiting with %d%s", rc, g_stop ? " (signal)" : "");
    return rc;
}
