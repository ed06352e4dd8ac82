// P6: certificates that have expired, or will within ukeyd's first warning.
#include "cert_expiry.h"

#include "client/names.h"
#include "token/escape.h"
#include "token/times.h"

#include <algorithm>

namespace ukey::cli::doctor {

long warn_days(const Facts& f)
{
    if (!f.config || f.config->daemon.expiry_thresholds.empty())
        return 28;
    return *std::max_element(f.config->daemon.expiry_thresholds.begin(), f.config->daemon.expiry_thresholds.end());
}

std::string renewal_advice(const Facts& f, const KeyFacts& k, const UserCert& c)
{
    const RenewalCa* ca =
        f.config ? renewal_ca_for(*f.config, k.info.label(), k.info.serial(),
                                  client::name_text(X509_get_issuer_name(c.x.get())))
                 : nullptr;
    if (!ca)
        return "renew it with your CA (their website, or " + command(f, k, "ukey renew") +
               " with --ca-url when they offer SCEP); to have ukeyd renew it by itself, add a [[renewal.ca]] for "
               "its issuer to ukey.conf";
    const unsigned days = ca->threshold_days ? ca->threshold_days : f.config->renewal.threshold_days;
    return "ukeyd renews it from '" + escape::printable(ca->name) + "' " + std::to_string(days) +
           " days before it expires, while the Key is plugged in; to renew now: " + command(f, k, "ukey renew");
}

UKEY_DOCTOR_CERT_CHECK(cert_expired, "P6.cert-expired", "P6", "a certificate on the Key has expired",
                       "certificates are valid for a year or two; it was not renewed in time",
                       "renew it (`ukey renew`, or the CA's website); websites refuse an expired certificate")
{
    const auto end = client::not_after(c.x.get());
    if (!end || *end > f.now)
        return;
    out.push_back(finding(cert_expired, Severity::problem, &k,
                          "the certificate '" + c.label + "' expired on " + iso8601(*end).substr(0, 10) + " (" +
                              std::to_string(-days_until(*end, f.now)) + " days ago): websites will refuse it",
                          renewal_advice(f, k, c)));
}

UKEY_DOCTOR_CERT_CHECK(cert_expiring, "P6.cert-expiring", "P6", "a certificate on the Key expires soon",
                       "within the first warning of [expiry] thresholds (28 days by default)",
                       "renew it before it expires; the finding says whether ukeyd will do it by itself")
{
    const auto end = client::not_after(c.x.get());
    const long days = end ? days_until(*end, f.now) : 0;
    if (!end || *end <= f.now || days > warn_days(f))
        return;
    out.push_back(finding(cert_expiring, Severity::warning, &k,
                          "the certificate '" + c.label + "' expires on " + iso8601(*end).substr(0, 10) + " (in " +
                              std::to_string(days) + (days == 1 ? " day)" : " days)"),
                          renewal_advice(f, k, c)));
}

} // namespace ukey::cli::doctor
