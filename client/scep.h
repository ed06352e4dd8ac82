// A SCEP client (RFC 8894) for ukey's renewal flow: GetCACaps, GetCACert
// with the CA certificate pinned by its SHA-256, and PKIOperation (PKCSReq,
// RenewalReq, CertPoll) as signed and enveloped PKCS#7 pkiMessages, over
// OpenSSL's HTTP client with a deadline.
//
// Private keys stay on the Key: onkey_rsa_key() gives OpenSSL an EVP_PKEY
// whose private operations (PKCS#1 v1.5 signature and decryption) are
// C_Sign/C_Decrypt with CKM_RSA_PKCS on the Key, the way libp11 does it.
// SCEP's reply is encrypted to the requester's key (RSA key transport), so
// SCEP needs an RSA key.
#pragma once

#include "client/module.h"
#include "client/scep_trust.h"
#include "client/x509.h"

#include <openssl/pkcs7.h>

#include <chrono>
#include <string>
#include <vector>

namespace ukey::client {

using PKCS7Ptr = std::unique_ptr<PKCS7, OsslFree<PKCS7_free>>;

// An EVP_PKEY for the RSA private key `priv` in session `s` (public half
// `pub`): OpenSSL signs and decrypts with it through the Key. `s` must
// outlive it.
Result<PKeyPtr> onkey_rsa_key(const Session& s, CK_OBJECT_HANDLE priv, EVP_PKEY* pub);

struct ScepCaps {
    bool post = false;      // POSTPKIOperation
    bool renewal = false;   // Renewal (RenewalReq)
    bool sha256 = false;    // SHA-256 (else SHA-1 signatures, which ukey refuses)
    bool aes = false;       // AES (else DES3 for the envelope)
    bool sha512 = false;
    std::vector<std::string> raw;
};

enum class ScepMessage { PKCSReq = 19, RenewalReq = 17, CertPoll = 20 };
enum class ScepStatus { success = 0, failure = 2, pending = 3 };

struct ScepReply {
    ScepStatus status = ScepStatus::failure;
    int fail_info = -1;            // badAlg 0, badMessageCheck 1, badRequest 2, badTime 3, badCertId 4
    std::string fail_text;         // the failInfo in words
    std::vector<X509Ptr> certs;    // on success: what the CA sent (the new certificate first)
};

// "the CA refused the request (badRequest: ...)" etc.
std::string fail_info_text(int fail_info);

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
    Result<bool> get_ca(const std::string& fingerprint);
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

// SCEP's transactionID for a public key: hex SHA-256 of its DER SubjectPublicKeyInfo.
std::string transaction_id_for(EVP_PKEY* pub);
// DER IssuerAndSubject (CertPoll's payload).
Bytes issuer_and_subject(const X509_NAME* issuer, const X509_NAME* subject);
// A self-signed certificate for `pub`, signed with `key` (on the Key): the
// signer certificate of a first enrolment (RFC 8894 2.3).
Result<X509Ptr> self_signed(EVP_PKEY* pub, EVP_PKEY* key, const X509_NAME* subject);

} // namespace ukey::client
