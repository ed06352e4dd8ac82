// What a certificate says, in words (ukey cert show/list, ukeyd's scan,
// renewal summaries), and request extensions from OpenSSL's config syntax.
#pragma once

#include "client/ossl.h"
#include "client/public_key.h"
#include "token/bytes.h"
#include "token/result.h"

#include <ctime>
#include <optional>
#include <string>
#include <vector>

namespace ukey::client {

struct CertDetails {
    std::string subject, issuer;
    std::string subject_cn;
    std::string serial; // lowercase hex
    std::optional<std::time_t> not_before, not_after;
    std::vector<std::string> key_usage;     // digitalSignature, ...
    std::vector<std::string> ext_key_usage; // clientAuth, ... or dotted OIDs
    std::vector<std::string> subject_alt_names; // DNS:..., email:..., IP:..., URI:..., UPN:...
    std::vector<std::string> crl_distribution_points; // URIs (other names as text)
    Bytes sha256, sha1;                      // fingerprints over the DER
    std::string signature_algorithm;         // sha256WithRSAEncryption
    KeyDescription public_key;
    Bytes subject_key_id;                    // the SKI extension, empty if none
    Bytes key_id;                            // key_identifier() of its public key
    bool is_ca = false;                      // basicConstraints cA, or a v1 root
    bool self_signed = false;
};
CertDetails cert_details(X509* x);

// "valid", "expired" or "not_yet_valid" at `now`.
std::string validity_status(X509* x, std::time_t now);

// --- requests -------------------------------------------------------------

// One extension for a request, from OpenSSL's config syntax: nid
// NID_subject_alt_name with "DNS:a.example,IP:1.2.3.4", NID_key_usage with
// "critical,digitalSignature", NID_ext_key_usage with "clientAuth".
Result<X509ExtPtr> make_extension(X509_REQ* req, int nid, const std::string& value);

} // namespace ukey::client
