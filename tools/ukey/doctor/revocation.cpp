// P10: is a certificate revoked? Its CRL is fetched from the distribution
// point the certificate names (http only, 5 s, 10 MiB at most) and checked
// with the issuer's key: revoked (when, why), a CRL that is out of date, or
// one that cannot be fetched, each in its own words. The OCSP responder its
// AIA names, if any, is asked too (ocsp.h), and says what the CRL did not.
#include "chain.h"
#include "net.h"
#include "ocsp.h"

#include "client/cert_details.h"
#include "client/x509.h"
#include "token/escape.h"
#include "token/times.h"

#include <openssl/err.h>
#include <openssl/pem.h>

namespace ukey::cli::doctor {

extern const Check revocation;

namespace {

struct Fetched {
    client::OsslPtr<X509_CRL, X509_CRL_free> crl;
    std::string error;
};

Fetched fetch_crl(const std::string& url)
{
    Fetched r;
    std::string der;
    if (!http_get(url, 10u * 1024 * 1024, der, r.error))
        return r;
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
    return revocation_reason(ASN1_ENUMERATED_get(reason.get()));
}

Finding revoked_finding(const KeyFacts& k, const UserCert& c, std::optional<std::time_t> when, const std::string& why,
                        const std::string& source)
{
    return finding(revocation, Severity::problem, &k,
                   "the certificate '" + c.label + "' was revoked by its CA" +
                       (when ? " on " + iso8601(*when).substr(0, 10) : std::string()) +
                       (why.empty() ? std::string() : " (" + why + ")") + source + ": websites refuse it",
                   "a revoked certificate cannot be used again: enrol for a new one (`ukey enroll`, or the CA's "
                   "website)");
}

// The first http:// CRL distribution point of the certificate, or "".
std::string crl_url(X509* x)
{
    for (const auto& dp : client::cert_details(x).crl_distribution_points)
        if (dp.rfind("http://", 0) == 0)
            return dp;
    return {};
}

// The verdict of the CRL at `url`: true when it says revoked.
bool crl_findings(const Facts& f, const KeyFacts& k, const UserCert& c, const std::string& url, const Chain& ch,
                  std::vector<Finding>& out)
{
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
        return false;
    }
    EVP_PKEY* issuer_key = ch.issuer ? X509_get0_pubkey(ch.issuer.get()) : nullptr;
    if (!issuer_key || X509_CRL_verify(got.crl.get(), issuer_key) != 1) {
        ERR_clear_error();
        out.push_back(finding(revocation, Severity::warning, &k,
                              "the revocation list at " + shown_url + " for the certificate '" + c.label +
                                  "' cannot be checked: " +
                                  (issuer_key ? "it is not signed by the certificate's CA"
                                              : "the CA's certificate is missing (see P9)"),
                              "tell the CA; meanwhile websites decide by themselves"));
        return false;
    }
    X509_REVOKED* rev = nullptr;
    if (X509_CRL_get0_by_cert(got.crl.get(), &rev, c.x.get()) == 1 && rev) {
        out.push_back(revoked_finding(k, c, client::asn1_time(X509_REVOKED_get0_revocationDate(rev)),
                                      reason_text(rev), ""));
        return true;
    }
    const auto next = client::asn1_time(X509_CRL_get0_nextUpdate(got.crl.get()));
    if (next && *next < f.now)
        out.push_back(finding(revocation, Severity::warning, &k,
                              "the revocation list at " + shown_url + " is out of date (its next update "
                              "was due " + iso8601(*next) + "): websites that check it may refuse the "
                              "certificate '" + c.label + "'",
                              "nothing to do on this computer: tell the CA its CRL is stale"));
    return false;
}

// The verdict of the OCSP responder at `responder`; a revocation the CRL
// reported already is not said twice.
void ocsp_findings(const KeyFacts& k, const UserCert& c, const std::string& responder, const Chain& ch,
                   bool crl_revoked, std::vector<Finding>& out)
{
    const OcspAnswer a = ask_ocsp(responder, c.x.get(), ch.issuer.get());
    const std::string url = escape::printable(a.url);
    switch (a.status) {
    case OcspAnswer::Status::no_responder:
    case OcspAnswer::Status::good:
        return;
    case OcspAnswer::Status::revoked:
        if (!crl_revoked)
            out.push_back(revoked_finding(k, c, a.revoked_at, revocation_reason(a.reason),
                                          ", says its OCSP responder " + url));
        return;
    case OcspAnswer::Status::unknown:
        out.push_back(finding(revocation, Severity::warning, &k,
                              "the OCSP responder " + url + " does not know the certificate '" + c.label +
                                  "' (it answers 'unknown'): websites that ask it may refuse the certificate",
                              "tell the CA its responder does not know the certificate"));
        return;
    case OcspAnswer::Status::unreachable:
        out.push_back(finding(revocation, Severity::warning, &k,
                              "the OCSP responder of the certificate '" + c.label + "' at " + url +
                                  " cannot be asked (" + escape::printable(a.error) +
                                  "): websites that ask it may refuse the certificate",
                              "check the network (a proxy?); if it persists, tell the CA that " + url +
                                  " does not answer"));
        return;
    case OcspAnswer::Status::unusable:
        out.push_back(finding(revocation, Severity::warning, &k,
                              "the OCSP responder " + url + " gives no usable answer for the certificate '" +
                                  c.label + "' (" + escape::printable(a.error) +
                                  "): websites that ask it may refuse the certificate",
                              "tell the CA; meanwhile websites decide by themselves"));
        return;
    }
}

} // namespace

UKEY_DOCTOR_CERT_CHECK(revocation, "P10.revoked", "P10",
                       "a certificate is revoked, or its revocation list or OCSP responder cannot be had or is out of date",
                       "the CA revoked it (lost Key, changed details, replaced), or a new certificate's CRL is not "
                       "published yet",
                       "a revoked certificate cannot be used again: enrol for a new one; an unreachable or stale CRL "
                       "or OCSP responder is the CA's to fix")
{
    if (f.offline)
        return;
    const std::string crl = crl_url(c.x.get());
    const std::string responder = ocsp_responder(c.x.get());
    if (crl.empty() && responder.empty())
        return;
    const Chain ch = build_chain(k, c.x.get());
    const bool revoked = !crl.empty() && crl_findings(f, k, c, crl, ch, out);
    if (!responder.empty())
        ocsp_findings(k, c, responder, ch, revoked, out);
}

} // namespace ukey::cli::doctor
