// Which of a SCEP CA's certificates ukey trusts (RFC 8894 3.2.1, 3.3.2).
//
// GetCACert travels over plain HTTP, so everything in its answer but the
// certificate pinned by its SHA-256 is the network's word. An RA certificate
// is trusted only when its signature chains to the pinned CA (X509_verify_cert
// with the pinned CA as the one trust anchor, no other certificate from the
// answer used to build the chain), it is valid now, and its keyUsage allows
// what it is used for: keyEncipherment to receive the request (which carries
// the challenge password), digitalSignature to sign the CA's answers. One
// certificate in the answer that claims to be an RA of the pinned CA but does
// not verify stops everything before a request is made: that is a forgery or
// a broken CA, and either way the challenge must not leave the machine.
//
// The pinned CA itself is trusted for both roles whatever its keyUsage:
// it is trusted by fingerprint, and CAs that serve SCEP without an RA often
// mark their key only keyCertSign/cRLSign (Debian's scepserver does).
//
// What this cannot tell apart: an RA from any other end-entity certificate
// the same CA issued whose key is fit for encryption (RFC 8894 defines no
// mark for an RA). Someone on the network path who holds such a certificate
// and its key can still pose as the RA; pinning the CA that only issues to
// RAs, or an RA fingerprint, closes that.
#pragma once

#include "client/x509.h"

#include <openssl/pkcs7.h>

#include <string>
#include <vector>

namespace ukey::client {

struct ScepTrust {
    X509Ptr ca{nullptr, X509_free};        // the pinned CA
    X509Ptr recipient{nullptr, X509_free}; // who requests are encrypted to: a verified RA, else the CA
    std::vector<X509Ptr> signers;          // who may sign answers: the CA and verified signing RAs
};

// From GetCACert's certificates (`url` only for messages): the pinned CA by
// `fingerprint` (hex SHA-256, colons and spaces allowed), then every other
// certificate that is not a CA, or that names the pinned CA as its issuer,
// verified as above. The error (rv CKR_OK) says which certificate failed and
// why, and that nothing was sent.
Result<ScepTrust> scep_trust(const std::vector<X509Ptr>& certs, const std::string& fingerprint,
                             const std::string& url);

// `x` verifies with `anchor` as the only trust anchor (which may be an
// intermediate CA: partial chains allowed) at the current time; else the
// error is OpenSSL's reason in words.
Result<void> check_chain(X509* x, X509* anchor);

// Verifies a signed pkiMessage `p7` against `signers` only (the certificates
// inside the message are ignored): every SignerInfo must be by one of them.
// Returns the signed content, or an error (rv CKR_OK).
Result<Bytes> verify_signed(PKCS7* p7, const std::vector<X509Ptr>& signers);

} // namespace ukey::client
