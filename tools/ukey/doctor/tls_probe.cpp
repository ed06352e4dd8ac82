// The site's TLS server is asked nothing but its handshake: the client
// certificate callback stops the handshake (-1: "look up later") as soon as
// the server's CertificateRequest has been read, so no certificate, signature
// or PIN is ever involved. The server's own certificate is not verified: only
// which CAs it names is read, and it is shown escaped.
#include "tls_probe.h"

#include "net.h"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <arpa/inet.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>

namespace ukey::cli::doctor {

namespace {

using SslCtxPtr = client::OsslPtr<SSL_CTX, SSL_CTX_free>;
using SslPtr = client::OsslPtr<SSL, SSL_free>;

constexpr int timeout_ms = 5000;
constexpr int max_names = 64;

int stop_at_request(SSL*, X509**, EVP_PKEY**)
{
    return -1;
}

bool is_address(const std::string& host)
{
    unsigned char buf[sizeof(in6_addr)];
    return inet_pton(AF_INET, host.c_str(), buf) == 1 || inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

std::string ssl_error_text()
{
    const unsigned long e = ERR_peek_last_error();
    char buf[256] = "the connection was closed";
    if (e)
        ERR_error_string_n(e, buf, sizeof buf);
    ERR_clear_error();
    return buf;
}

} // namespace

bool probe_url_valid(const std::string& url)
{
    std::string host, port;
    bool tls = false;
    return url.rfind("https://", 0) == 0 && split_url(url, host, port, tls) && tls;
}

ServerFacts probe_server(const std::string& url)
{
    ServerFacts s;
    s.url = url;
    std::string host, port;
    bool tls = false;
    if (!split_url(url, host, port, tls) || !tls) {
        s.error = "it is not an https:// URL";
        return s;
    }
    const SigpipeBlocked no_sigpipe;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    const int fd = connect_within(host, port, timeout_ms, s.error);
    if (fd < 0)
        return s;
    ERR_clear_error();
    SslCtxPtr ctx(SSL_CTX_new(TLS_client_method()));
    if (ctx)
        SSL_CTX_set_client_cert_cb(ctx.get(), stop_at_request);
    SslPtr ssl(ctx ? SSL_new(ctx.get()) : nullptr);
    if (!ssl || SSL_set_fd(ssl.get(), fd) != 1) {
        close(fd);
        s.error = "TLS could not be set up: " + ssl_error_text();
        return s;
    }
    if (!is_address(host))
        SSL_set_tlsext_host_name(ssl.get(), host.c_str());
    for (;;) {
        const int r = SSL_connect(ssl.get());
        if (r == 1)
            break; // finished without a CertificateRequest
        const int e = SSL_get_error(ssl.get(), r);
        if (e == SSL_ERROR_WANT_X509_LOOKUP) {
            s.asks_for_cert = true;
            const STACK_OF(X509_NAME)* names = SSL_get_client_CA_list(ssl.get());
            for (int i = 0; names && i < sk_X509_NAME_num(names) && i < max_names; ++i)
                if (X509_NAME* n = X509_NAME_dup(sk_X509_NAME_value(names, i)))
                    s.acceptable.emplace_back(n);
            break;
        }
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                              deadline - std::chrono::steady_clock::now()).count();
        if ((e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) || left <= 0) {
            const int err = errno;
            s.error = left <= 0 ? "no TLS answer within 5 s"
                      : e == SSL_ERROR_SYSCALL && err != 0 && ERR_peek_last_error() == 0
                          ? "the TLS handshake failed: " + errno_text(err)
                          : "the TLS handshake failed: " + ssl_error_text();
            break;
        }
        pollfd pfd{fd, static_cast<short>(e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT), 0};
        if (poll(&pfd, 1, static_cast<int>(left)) == 0) {
            s.error = "no TLS answer within 5 s";
            break;
        }
    }
    ERR_clear_error();
    ssl.reset(); // no close_notify: the handshake is abandoned
    close(fd);
    return s;
}

} // namespace ukey::cli::doctor
