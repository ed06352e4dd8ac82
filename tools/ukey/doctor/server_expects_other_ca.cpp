// P13 with --url: the site accepts certificates from some CAs only (its
// TLS CertificateRequest names them), and none of this Key's login
// certificates comes from one of them: the browser offers none, and the
// user sees "no certificate" or a refusal.
#include "doctor.h"

#include "client/cert_details.h"
#include "client/names.h"
#include "token/escape.h"

#include <algorithm>

namespace ukey::cli::doctor {

namespace {

bool accepted(const ServerFacts& s, const X509_NAME* name)
{
    return std::any_of(s.acceptable.begin(), s.acceptable.end(),
                       [&](const auto& a) { return X509_NAME_cmp(a.get(), name) == 0; });
}

// Whether the certificate's issuer, or a CA above it whose certificate is on
// the Key, is one the server accepts (servers name roots or intermediates).
bool chain_accepted(const ServerFacts& s, const KeyFacts& k, X509* cert)
{
    std::vector<client::X509Ptr> cas;
    for (const auto& c : k.certs)
        if (auto x = c.parse(); x && X509_check_ca(x.get()) != 0)
            cas.push_back(std::move(x));
    X509* at = cert;
    for (int depth = 0; at && depth < 8; ++depth) {
        const X509_NAME* issuer = X509_get_issuer_name(at);
        if (accepted(s, issuer))
            return true;
        if (X509_check_issued(at, at) == X509_V_OK)
            return false;
        X509* up = nullptr;
        for (const auto& ca : cas)
            if (X509_NAME_cmp(X509_get_subject_name(ca.get()), issuer) == 0 && ca.get() != at)
                up = ca.get();
        at = up;
    }
    return false;
}

bool logs_in(const UserCert& c)
{
    const auto eku = client::cert_details(c.x.get()).ext_key_usage;
    return eku.empty() || std::find(eku.begin(), eku.end(), "clientAuth") != eku.end();
}

} // namespace

UKEY_DOCTOR_KEY_CHECK(server_expects_other_ca, "P13.server-expects-other-ca", "P13",
                      "with --url: the site accepts certificates from other CAs than those of the Key's "
                      "certificates",
                      "the certificate is for another service (another CA, a test CA), or the site changed the CAs "
                      "it accepts",
                      "use the Key that holds a certificate from a CA the site names, or ask the site which "
                      "certificate it expects")
{
    if (!f.server || !f.server->error.empty() || !f.server->asks_for_cert || f.server->acceptable.empty())
        return;
    std::string mine;
    int count = 0;
    for (const auto& c : user_certs(k)) {
        if (!logs_in(c))
            continue;
        if (chain_accepted(*f.server, k, c.x.get()))
            return;
        mine += std::string(count++ ? "; " : "") + "'" + c.label + "' is from '" +
                escape::printable(client::name_text(X509_get_issuer_name(c.x.get()))) + "'";
    }
    if (count == 0)
        return;
    std::string theirs;
    const std::size_t n = f.server->acceptable.size();
    for (std::size_t i = 0; i < n && i < 3; ++i)
        theirs += std::string(i ? (i + 1 == n ? " or " : ", ") : "") + "'" +
                  escape::printable(client::name_text(f.server->acceptable[i].get())) + "'";
    if (n > 3)
        theirs += " (and " + std::to_string(n - 3) + " more)";
    out.push_back(finding(server_expects_other_ca, Severity::problem, &k,
                          "the site " + escape::printable(f.server->url) + " asks for a certificate from " + theirs +
                              "; this Key's " + (count == 1 ? "certificate " : "certificates ") + mine +
                              ", so the browser offers none of them there",
                          "use the Key that holds a certificate from the CA the site names, or ask the site's "
                          "helpdesk which certificate it expects"));
}

} // namespace ukey::cli::doctor
