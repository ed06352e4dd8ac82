// The doctor's network access (CRL and OCSP fetches, --url's TLS probe):
// one way to connect, bounded in time, that tells a refused connection from
// one that gets no answer.
#pragma once

#include <signal.h>

#include <string>

namespace ukey::cli::doctor {

// A TCP connection to host:port within `timeout_ms`: the socket
// (non-blocking, close-on-exec), or -1 and `why` in words ("connection
// refused", "no answer within 5 s", "the name HOST does not resolve";
// not escaped).
int connect_within(const std::string& host, const std::string& port, int timeout_ms, std::string& why);

// The host and port of an http:// or https:// URL (the port defaulted by
// the scheme); false when it is not such a URL. `tls`: it is https.
bool split_url(const std::string& url, std::string& host, std::string& port, bool& tls);

// strerror(err) as part of a sentence: "connection refused".
std::string errno_text(int err);

// Why an http(s) URL's server cannot be connected to (5 s), or "" when it
// can. OpenSSL's HTTP client retries a refused connection until its
// timeout and then says "connect timeout": this plain connect first tells
// the two apart.
std::string unreachable(const std::string& url);

// GET of an http:// URL (5 s, at most `max` bytes): true and the body, or
// false and why in words (not escaped). A refused connection is told from
// a server that does not answer (unreachable()).
bool http_get(const std::string& url, std::size_t max, std::string& body, std::string& why);

// While it lives, writing to a connection the server has closed fails with
// EPIPE instead of killing ukey with SIGPIPE (a server may hang up at any
// moment); a SIGPIPE this caused is taken off again.
class SigpipeBlocked {
public:
    SigpipeBlocked();
    ~SigpipeBlocked();
    SigpipeBlocked(const SigpipeBlocked&) = delete;
    SigpipeBlocked& operator=(const SigpipeBlocked&) = delete;

private:
    sigset_t old_{};
    bool was_pending_ = false;
};

} // namespace ukey::cli::doctor
