// What P6's checks share: how a certificate's renewal is set up.
#pragma once

#include "doctor.h"

namespace ukey::cli::doctor {

// "ukeyd renews it from <CA> (N days before expiry)", or how to renew it
// by hand when no [[renewal.ca]] serves it.
std::string renewal_advice(const Facts& f, const KeyFacts& k, const UserCert& c);
// The days before expiry at which ukeyd first warns ([expiry] thresholds).
long warn_days(const Facts& f);

} // namespace ukey::cli::doctor
