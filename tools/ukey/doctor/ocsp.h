// P10 over OCSP: the responder a certificate's AIA names is asked about it
// (RFC 6960 over HTTP POST, 5 s, 64 KiB at most); the answer counts only
// when signed for its CA.
#pragma once

#include <openssl/x509.h>

#include <ctime>
#include <optional>
#include <string>

namespace ukey::cli::doctor {

struct OcspAnswer {
    enum class Status { no_responder, good, revoked, unknown, unreachable, unusable };
    Status status = Status::no_responder;
    std::string url;   // the responder (not escaped)
    std::string error; // unreachable, unusable: why (not escaped)
    std::optional<std::time_t> revoked_at;
    long reason = -1;  // CRLReason, -1 when none is given
};

// The first http:// OCSP responder the certificate's AIA names, or "".
std::string ocsp_responder(X509* cert);
// Asks the responder at `url` about `cert`, whose issuer is `issuer`.
OcspAnswer ask_ocsp(const std::string& url, X509* cert, X509* issuer);

// A CRLReason (RFC 5280 5.3.1) in words ("the key was compromised"), or ""
// for none worth saying.
std::string revocation_reason(long code);

} // namespace ukey::cli::doctor
