#include "net.h"

#include "client/ossl.h"

#include <openssl/err.h>
#include <openssl/http.h>

#include <netdb.h>
#include <pthread.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>

namespace ukey::cli::doctor {

bool split_url(const std::string& url, std::string& host, std::string& port, bool& tls)
{
    char *h = nullptr, *p = nullptr;
    int ssl = 0;
    if (url.size() > 4096 ||
        OSSL_HTTP_parse_url(url.c_str(), &ssl, nullptr, &h, &p, nullptr, nullptr, nullptr, nullptr) != 1) {
        ERR_clear_error();
        return false;
    }
    client::OsslMem<char> hh(h), pp(p);
    host = hh.get();
    port = pp.get();
    tls = ssl != 0;
    return !host.empty();
}

std::string errno_text(int err)
{
    std::string s = std::strerror(err);
    if (!s.empty())
        s[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(s[0])));
    return s;
}

int connect_within(const std::string& host, const std::string& port, int timeout_ms, std::string& why)
{
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    if (getaddrinfo(host.c_str(), port.c_str(), &hints, &res) != 0 || !res) {
        why = "the name " + host + " does not resolve";
        return -1;
    }
    const std::string no_answer = "no answer within " + std::to_string(timeout_ms / 1000) + " s";
    why = no_answer;
    int connected = -1;
    for (addrinfo* ai = res; ai && connected < 0; ai = ai->ai_next) {
        const int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0)
            continue;
        int err = connect(fd, ai->ai_addr, ai->ai_addrlen) == 0 ? 0 : errno;
        if (err == EINPROGRESS) {
            pollfd pfd{fd, POLLOUT, 0};
            socklen_t len = sizeof err;
            err = poll(&pfd, 1, timeout_ms) == 1 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 ? err
                                                                                                       : ETIMEDOUT;
        }
        if (err == 0) {
            connected = fd;
            why.clear();
            break;
        }
        close(fd);
        why = err == ETIMEDOUT ? no_answer : errno_text(err);
    }
    freeaddrinfo(res);
    return connected;
}

std::string unreachable(const std::string& url)
{
    std::string host, port, why;
    bool tls = false;
    if (!split_url(url, host, port, tls))
        return "not a URL";
    if (const int fd = connect_within(host, port, 5000, why); fd >= 0)
        close(fd);
    return why;
}

namespace {

sigset_t sigpipe_set()
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    return set;
}

bool sigpipe_pending()
{
    sigset_t pending;
    return sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE) == 1;
}

} // namespace

SigpipeBlocked::SigpipeBlocked()
{
    const sigset_t set = sigpipe_set();
    was_pending_ = sigpipe_pending();
    pthread_sigmask(SIG_BLOCK, &set, &old_);
}

SigpipeBlocked::~SigpipeBlocked()
{
    const sigset_t set = sigpipe_set();
    if (!was_pending_ && sigpipe_pending()) {
        const timespec now{0, 0};
        sigtimedwait(&set, nullptr, &now);
    }
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
}

bool http_get(const std::string& url, std::size_t max, std::string& body, std::string& why)
{
    const SigpipeBlocked no_sigpipe;
    body.clear();
    if (why = unreachable(url); !why.empty())
        return false;
    ERR_clear_error();
    client::BioPtr in(OSSL_HTTP_get(url.c_str(), nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, 0, nullptr,
                                    nullptr, 0, max, 5));
    if (!in) {
        unsigned long e = ERR_peek_last_error();
        char buf[256] = "no answer";
        if (e)
            ERR_error_string_n(e, buf, sizeof buf);
        why = buf;
        ERR_clear_error();
        return false;
    }
    char chunk[4096];
    for (int n; body.size() <= max && (n = BIO_read(in.get(), chunk, sizeof chunk)) > 0;)
        body.append(chunk, static_cast<std::size_t>(n));
    ERR_clear_error();
    if (body.size() > max) {
        why = "the answer is over " + std::to_string(max / 1024) + " KiB";
        return false;
    }
    return true;
}

} // namespace ukey::cli::doctor
