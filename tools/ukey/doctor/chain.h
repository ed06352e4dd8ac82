// The chain of a certificate on a Key, built the way a relying party would
// find it: from the CA certificates on the Key and the system's store.
// P9 (chain) judges it; P10 (revocation) needs the issuer it found.
#pragma once

#include "doctor.h"

#include "client/ossl.h"

namespace ukey::cli::doctor {

struct Chain {
    bool complete = false;         // reaches a self-signed certificate
    int error = 0;                 // X509_V_ERR_* when not complete
    std::string missing;           // the issuer not found (RFC 2253), when that is why
    std::vector<std::string> aia;  // caIssuers URLs of the last certificate found
    client::X509Ptr last{nullptr, X509_free}; // that certificate, when the issuer is missing
    client::X509Ptr issuer{nullptr, X509_free}; // the certificate's issuer, when found
};

// Times are not judged here (P6/P7 do).
Chain build_chain(const KeyFacts& k, X509* cert);

} // namespace ukey::cli::doctor
