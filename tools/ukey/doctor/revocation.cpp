// P10: is a certificate revoked? Its CRL is fetched from the distribution
// point the certificate names (http only, 5 s, 10 MiB at most) and checked
// with the issuer's key: revoked (when, why), a CRL that is out of date, or
// one that cannot be fetched, each in its own words.
#include "chain.h"

#include "client/cert_details.h"
#include "token/escape.h"
#include "token/times.h"

#include <openssl/err.h>
#include <openssl/http.h>
#include <openssl/pem.h>

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>

namespace ukey::cli::doctor {

namespace {

struct Fetched {
    client::OsslPtr<X509_CRL, X509_CRL_free> crl;
    std::string error;
};

// OpenSSL's HTTP client retries a refused connection until its timeout and
// then says "connect timeout": a plain connect first tells the two apart.
std::string reach(const std::string& url)
{
    char *host = nullptr, *port = nullptr;
    int ssl = 0;
    if (OSSL_HTTP_parse_url(url.c_str(), &ssl, nullptr, &host, &port, nullptr, nullptr, nullptr, nullptr) != 1) {
        ERR_clear_error();
        return "not a URL";
    }
    client::OsslMem<char> h(host), p(port);
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    if (getaddrinfo(h.get(), p.get(), &hints, &res) != 0 || !res)
        return std::string("the name ") + h.get() + " does not resolve";
    std::string why = "no answer within 5 s";
    for (addrinfo* ai = res; ai; ai = ai->ai_next) {
        const int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0)
            continue;
        int err = connect(fd, ai->ai_addr, ai->ai_addrlen) == 0 ? 0 : errno;
        if (err == EINPROGRESS) {
            pollfd pfd{fd, POLLOUT, 0};
            socklen_t len = sizeof err;
            err = poll(&pfd, 1, 5000) == 1 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 ? err : ETIMEDOUT;
        }
        close(fd);
        if (err == 0) {
            why.clear();
            break;
        }
        why = err == ETIMEDOUT ? "no answer within 5 s" : std::string(std::strerror(err));
        if (!why.empty())
            why[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(why[0])));
    }
    freeaddrinfo(res);
    return why;
}

Fetched fetch_crl(const std::string& url)
{
    Fetched r;
    if (r.error = reach(url); !r.error.empty())
        return r;
    ERR_clear_error();
    client::BioPtr body(OSSL_HTTP_get(url.c_str(), nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, 0, nullptr,
                                      nullptr, 0, 10 * 1024 * 1024, 5));
    if (!body) {
        unsigned long e = ERR_peek_last_error();
        char buf[256] = "no answer";
        if (e)
            ERR_error_string_n(e, buf, sizeof buf);
        r.error = buf;
        ERR_clear_error();
        return r;
    }
    std::string der;
    char chunk[4096];
    for (int n; der.size() <= 10u * 1024 * 1024 && (n = BIO_read(body.get(), chunk, sizeof chunk)) > 0;)
        der.append(chunk, static_cast<std::size_t>(n));
    const auto* p = reinterpret_cast<const unsigned char*>(der.data());
    r.crl.reset(d2i_X509_CRL(nullptr, &p, static_cast<long>(der.size())));
    if (!r.crl) {
        client::BioPtr mem(BIO_new_mem_buf(der.data(), static_cast<int>(der.size())));
        r.crl.reset(mem ? PEM_read_bio_X509_CRL(mem.get(), nullptr, nullptr, nullptr) : nullptr);
    }
    if (!r.crl)
        r.error = "the answer is not a CRL";
    ERR_clear_error();
    return r;
}

std::string reason_text(const X509_REVOKED* rev)
{
    int crit = 0;
    client::OsslPtr<ASN1_ENUMERATED, ASN1_ENUMERATED_free> reason(static_cast<ASN1_ENUMERATED*>(
        X509_REVOKED_get_ext_d2i(rev, NID_crl_reason, &crit, nullptr)));
    if (!reason)
        return {};
    switch (ASN1_ENUMERATED_get(reason.get())) {
    case 1:
        return "the key was compromised";
    case 3:
        return "the holder's details changed";
    case 4:
        return "it was replaced by a new certificate";
    case 5:
        return "it is no longer needed";
    case 6:
        return "it is on hold";
    default:
        return {};
    }
}

std::optional<std::time_t> to_time(const ASN1_TIME* t)
{
    struct tm tm {};
    if (!t || ASN1_TIME_to_tm(t, &tm) != 1)
        return std::nullopt;
    return timegm(&tm);
}

} // namespace

UKEY_DOCTOR_CERT_CHECK(revocation, "P10.revoked", "P10",
                       "a certificate is revoked, or its revocation list cannot be had or is out of date",
                       "the CA revoked it (lost Key, changed details, replaced), or a new certificate's CRL is not "
                       "published yet",
                       "a revoked certificate cannot be used again: enrol for a new one; an unreachable or stale CRL "
                       "is the CA's to fix")
{
    if (f.offline)
        return;
    std::string url;
    for (const auto& dp : client::cert_details(c.x.get()).crl_distribution_points)
        if (dp.rfind("http://", 0) == 0) {
            url = dp;
            break;
        }
    if (url.empty())
        return;
    const std::string shown_url = escape::printable(url);
    const Fetched got = fetch_crl(url);
    if (!got.crl) {
        out.push_back(finding(revocation, Severity::warning, &k,
                              "the revocation list of the certificate '" + c.label +
                                  "' cannot be fetched from " + shown_url + " (" +
                                  escape::printable(got.error) +
                                  "): websites that check it may refuse the certificate",
                              "check the network (a proxy?); if it persists, tell the CA that " +
                                  shown_url + " does not answer"));
        return;
    }
    const Chain ch = build_chain(k, c.x.get());
    EVP_PKEY* issuer_key = ch.issuer ? X509_get0_pubkey(ch.issuer.get()) : nullptr;
    if (!issuer_key || X509_CRL_verify(got.crl.get(), issuer_key) != 1) {
        ERR_clear_error();
        out.push_back(finding(revocation, Severity::warning, &k,
                              "the revocation list at " + shown_url + " for the certificate '" + c.label +
                                  "' cannot be checked: " +
                                  (issuer_key ? "it is not signed by the certificate's CA"
                                              : "the CA's certificate is missing (see P9)"),
                              "tell the CA; meanwhile websites decide by themselves"));
        return;
    }
    X509_REVOKED* rev = nullptr;
    if (X509_CRL_get0_by_cert(got.crl.get(), &rev, c.x.get()) == 1 && rev) {
        const auto when = to_time(X509_REVOKED_get0_revocationDate(rev));
        const std::string why = reason_text(rev);
        out.push_back(finding(
            revocation, Severity::problem, &k,
            "the certificate '" + c.label + "' was revoked by its CA" +
                (when ? " on " + iso8601(*when).substr(0, 10) : std::string()) +
                (why.empty() ? std::string() : " (" + why + ")") + ": websites refuse it",
            "a revoked certificate cannot be used again: enrol for a new one (`ukey enroll`, or the CA's "
            "website)"));
        return;
    }
    const auto next = to_time(X509_CRL_get0_nextUpdate(got.crl.get()));
    if (next && *next < f.now)
        out.push_back(finding(revocation, Severity::warning, &k,
                              "the revocation list at " + shown_url + " is out of date (its next update "
                              "was due " + iso8601(*next) + "): websites that check it may refuse the "
                              "certificate '" + c.label + "'",
                              "nothing to do on this computer: tell the CA its CRL is stale"));
}

} // namespace ukey::cli::doctor
