// A SCEP client (RFC 8894) for ukey's renewal flow: GetCACaps, GetCACert
// with the CA certificate pinned by its SHA-256, and PKIOperation (PKCSReq,
// RenewalReq, CertPoll), over OpenSSL's HTTP client with a deadline. The
// messages themselves are scep_message.h's; which CA certificates are
// trusted is scep_trust.h's.
//
// Private keys stay on the Key: the signer key given to pki_operation() is
// onkey_rsa_key() (signer.h). SCEP's reply is encrypted to the requester's
// key (RSA key transport), so SCEP needs an RSA key.
#pragma once

#include "client/module.h"
#include "client/scep_message.h"
#include "client/scep_trust.h"
#include "client/signer.h"
#include "client/x509.h"

#include <chrono>
#include <string>
#include <vector>

namespace ukey::client {

class ScepClient {
public:
    // `url`: http://host[:port]/path; `timeout`: for each HTTP exchange.
    ScepClient(std::string url, std::chrono::seconds timeout);

    Result<ScepCaps> get_caps();
    // The CA (and RA) certificates; the one whose SHA-256 is `fingerprint`
    // (hex) must be among them, else an error that names both fingerprints,
    // and every RA certificate must verify against it (scep_trust.h), else
    // an error. Sets ca() and recipient() (the RA's encryption certificate
    // if there is one, else the CA's).
    Result<void> get_ca(const std::string& fingerprint);
    X509* ca() const { return trust_.ca.get(); }
    X509* recipient() const { return trust_.recipient.get(); }

    // One PKIOperation: `payload` (a DER CSR for PKCSReq/RenewalReq, an
    // IssuerAndSubject for CertPoll) enveloped to recipient(), signed by
    // `signer_cert`/`signer_key`; the reply verified (signed by the pinned CA
    // or a verified signing RA, nothing else; our nonce and transaction
    // echoed) and decrypted with `signer_key`.
    Result<ScepReply> pki_operation(ScepMessage type, const Bytes& payload, const std::string& transaction_id,
                                    X509* signer_cert, EVP_PKEY* signer_key, const ScepCaps& caps);

private:
    Result<Bytes> http(const std::string& query, const Bytes* post, const char* content_type);
    std::string url_, host_, port_, path_;
    bool url_ok_ = false;
    std::chrono::seconds timeout_;
    ScepTrust trust_;
};

} // namespace ukey::client
