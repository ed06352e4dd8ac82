// P15: the CA refused the last renewal (or enrolment). Kept by `ukey renew`
// beside the Key's journal (client/refusal.h) until an exchange succeeds.
#include "doctor.h"

#include "client/cert_details.h"
#include "token/escape.h"
#include "token/times.h"

#include <algorithm>

namespace ukey::cli::doctor {

UKEY_DOCTOR_KEY_CHECK(renewal_refused, "P15.renewal-refused", "P15", "the CA refused the last renewal or enrolment",
                      "many CAs renew only in the last weeks before expiry, or do not renew over SCEP at all and "
                      "re-issue instead (a new application); or the request itself was wrong",
                      "ask the CA for a re-issue and write the new certificate with `ukey cert write`, or renew again "
                      "once its renewal window opens")
{
    if (!k.refusal_error.empty()) {
        out.push_back(finding(renewal_refused, Severity::note, &k,
                              "the record of the CA's last refusal cannot be read (" +
                                  escape::printable(k.refusal_error) + ")",
                              "delete that file; the next `ukey renew` says again what the CA answers"));
        return;
    }
    if (!k.refusal)
        return;
    const client::Refusal& r = *k.refusal;
    const std::string when = iso8601(r.time);
    const std::string why = escape::printable(r.fail_text.empty() ? std::string("no reason given") : r.fail_text);
    const std::string ca = escape::printable(r.ca);
    if (r.operation == "enroll") {
        out.push_back(finding(renewal_refused, Severity::warning, &k,
                              "the CA at " + ca + " refused the last enrolment of this Key on " + when + " (" + why + ")",
                              "check the challenge password and the subject with your CA, then run `ukey enroll` "
                              "again"));
        return;
    }
    // Only while the certificate it refused to renew is still the one on the
    // Key: once it was replaced, the refusal explains nothing any more.
    const auto certs = user_certs(k);
    const bool still_there = std::any_of(certs.begin(), certs.end(), [&](const UserCert& c) {
        return !r.cert_serial.empty() && client::cert_details(c.x.get()).serial == r.cert_serial;
    });
    if (!still_there)
        return;
    out.push_back(finding(renewal_refused, Severity::warning, &k,
                          "the CA at " + ca + " refused to renew the certificate '" +
                              escape::printable(r.cert_label) + "' on " + when + " (" + why +
                              "): usually the CA's policy, not a fault",
                          "many CAs renew only in the last weeks before expiry, or not at all and re-issue instead: "
                          "ask your CA for a new certificate and write it with `ukey cert write`, or run `ukey renew` "
                          "again once renewal opens"));
}

} // namespace ukey::cli::doctor
