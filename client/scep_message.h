// SCEP's messages (RFC 8894) without the transport: GetCACaps' text,
// GetCACert's certificates, the pkiMessage (a PKCS#7 signedData around an
// envelopedData to the CA) and the CA's CertRep, checked and opened. The
// HTTP side is ScepClient (scep.h); the tests drive these with fixtures.
#pragma once

#include "client/x509.h"

#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace ukey::client {

struct ScepCaps {
    bool post = false;    // POSTPKIOperation
    bool renewal = false; // Renewal (RenewalReq)
    bool sha256 = false;  // SHA-256 (else SHA-1 signatures, which ukey refuses)
    bool aes = false;     // AES (else DES3 for the envelope)
    bool sha512 = false;
    std::vector<std::string> raw;
};

enum class ScepMessage { PKCSReq = 19, RenewalReq = 17, CertPoll = 20 };
enum class ScepStatus { success = 0, failure = 2, pending = 3 };

struct ScepReply {
    ScepStatus status = ScepStatus::failure;
    int fail_info = -1;         // badAlg 0, badMessageCheck 1, badRequest 2, badTime 3, badCertId 4
    std::string fail_text;      // the failInfo in words
    std::vector<X509Ptr> certs; // on success: what the CA sent (the new certificate first)
};

// "the CA refused the request (badRequest: ...)" etc.
std::string fail_info_text(int fail_info);

// GetCACaps' answer: one capability a line, any case.
ScepCaps parse_caps(std::string_view text);
// GetCACert's answer: one DER certificate or a PKCS#7 certs-only bundle
// (`url` only for the message).
Result<std::vector<X509Ptr>> parse_ca_certs(std::span<const unsigned char> body, const std::string& url);
// A PKCS#7 signedData's certificates (none for other types).
std::vector<X509Ptr> p7_certs(PKCS7* p7);

struct PkiRequest {
    Bytes der;   // the pkiMessage
    Bytes nonce; // its senderNonce, which the answer must echo
};
// `payload` (a DER CSR for PKCSReq/RenewalReq, an IssuerAndSubject for
// CertPoll) enveloped to `recipient` (AES-128 if the CA offers it, else
// 3DES), signed with SHA-256 by `signer_cert`/`signer_key`.
Result<PkiRequest> encode_pki_message(ScepMessage type, const Bytes& payload, const std::string& txid, X509* recipient,
                                      X509* signer_cert, EVP_PKEY* signer_key, const ScepCaps& caps);
// The CA's CertRep: signed by one of `signers` (nothing else), a CertRep of
// transaction `txid` that echoes `nonce`; on SUCCESS its envelope opened
// with `signer_key` (encrypted to `signer_cert`) and its certificates read.
Result<ScepReply> decode_cert_rep(std::span<const unsigned char> body, const std::vector<X509Ptr>& signers,
                                  const std::string& txid, const Bytes& nonce, X509* signer_cert, EVP_PKEY* signer_key);

// SCEP's transactionID for a public key: hex SHA-256 of its DER SubjectPublicKeyInfo.
std::string transaction_id_for(EVP_PKEY* pub);
// DER IssuerAndSubject (CertPoll's payload).
Bytes issuer_and_subject(const X509_NAME* issuer, const X509_NAME* subject);

} // namespace ukey::client
