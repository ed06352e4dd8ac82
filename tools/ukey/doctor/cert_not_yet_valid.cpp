// P7: a certificate that is not valid yet: almost always this computer's
// clock (a new certificate is valid from the minute it was issued).
#include "doctor.h"

#include "token/times.h"

namespace ukey::cli::doctor {

namespace {

// Rounded to the nearest unit: "3 days" stays 3 days for the minutes a
// check takes.
std::string span(long seconds)
{
    if (seconds >= 2 * 86400)
        return std::to_string((seconds + 43200) / 86400) + " days";
    if (seconds >= 2 * 3600)
        return std::to_string((seconds + 1800) / 3600) + " hours";
    return std::to_string(std::max(1L, (seconds + 30) / 60)) + " minutes";
}

} // namespace

UKEY_DOCTOR_CERT_CHECK(cert_not_yet_valid, "P7.cert-not-yet-valid", "P7", "a certificate on the Key is not valid yet",
                       "this computer's clock is behind (or the certificate was issued for a later date)",
                       "set the clock right (`timedatectl set-ntp true` as root); else wait until its start date")
{
    const auto start = client::not_before(c.x.get());
    if (!start || *start <= f.now)
        return;
    const long ahead = static_cast<long>(*start - f.now);
    std::string why;
    if (f.clock_synchronised == false)
        why = "; this computer's clock is not synchronised, so it is most likely " + span(ahead) + " behind";
    else if (f.clock_synchronised == true)
        why = "; this computer's clock is synchronised, so the certificate was issued for a later date";
    else
        why = "; if it was issued just now, this computer's clock is " + span(ahead) + " behind";
    out.push_back(finding(cert_not_yet_valid, Severity::problem, &k,
                          "the certificate '" + c.label + "' is valid only from " + iso8601(*start) + ", " +
                              span(ahead) + " from now by this computer's clock" + why,
                          f.clock_synchronised == true
                              ? std::string("wait until then, or ask the CA why it starts later")
                              : "set the clock right (as root: `timedatectl set-ntp true`, or set the date by "
                                "hand), then try again"));
}

} // namespace ukey::cli::doctor
