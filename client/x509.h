// X.509 with OpenSSL for ukey's tools: certificates in any of the file
// formats a CA hands out, public keys rebuilt from PKCS#11 attributes, names,
// extensions and fingerprints in words. Nothing here touches a Key.
#pragma once

#include "token/result.h"

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <ctime>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace ukey::client {

// A unique_ptr deleter calling an OpenSSL free function.
template <auto F>
struct OsslFree {
    template <class T>
    void operator()(T* p) const { F(p); }
};

using X509Ptr = std::unique_ptr<X509, decltype(&X509_free)>;
using PKeyPtr = std::unique_ptr<EVP_PKEY, OsslFree<EVP_PKEY_free>>;
using X509NamePtr = std::unique_ptr<X509_NAME, OsslFree<X509_NAME_free>>;
using X509ReqPtr = std::unique_ptr<X509_REQ, OsslFree<X509_REQ_free>>;
using X509AlgorPtr = std::unique_ptr<X509_ALGOR, OsslFree<X509_ALGOR_free>>;
using X509ExtPtr = std::unique_ptr<X509_EXTENSION, OsslFree<X509_EXTENSION_free>>;

using Bytes = std::vector<unsigned char>;

// OpenSSL's pending errors as one line (and the queue emptied); "" if none.
std::string openssl_errors();

// Every certificate in `data`: PEM (any number of CERTIFICATE and PKCS7
// blocks; other blocks are skipped), a DER certificate, or a DER PKCS#7
// bundle (.p7b/.p7c). An error (rv CKR_OK) says why nothing was found.
Result<std::vector<X509Ptr>> load_certificates(std::span<const unsigned char> data);

X509Ptr parse_der(std::span<const unsigned char> der);
Bytes to_der(X509* x);
std::string to_pem(X509* x);
Bytes to_der(X509_REQ* r);
std::string to_pem(X509_REQ* r);
Bytes name_der(const X509_NAME* n);
// The serialNumber as a DER INTEGER (what CKA_SERIAL_NUMBER holds).
Bytes serial_der(X509* x);

// --- public keys ----------------------------------------------------------

// An RSA public key from CKA_MODULUS and CKA_PUBLIC_EXPONENT.
Result<PKeyPtr> rsa_public_key(std::span<const unsigned char> modulus, std::span<const unsigned char> exponent);
// An EC public key from CKA_EC_PARAMS (a named curve) and CKA_EC_POINT (a
// DER OCTET STRING, or the raw point as some tokens return it).
Result<PKeyPtr> ec_public_key(std::span<const unsigned char> ec_params, std::span<const unsigned char> ec_point);
// The curve OID's short name (prime256v1) for CKA_EC_PARAMS; empty if it is
// not a named curve OpenSSL knows.
std::string curve_of_params(std::span<const unsigned char> ec_params);
// CKA_EC_PARAMS (the DER OID) for a curve given by NID.
Bytes ec_params_for(int nid);
// The bits of a named curve (256 for prime256v1); 0 if unknown.
int curve_bits(const std::string& short_name);
// "P-256" for prime256v1, else the short name.
std::string curve_display(const std::string& short_name);

// The key identifier of RFC 5280 4.2.1.2 method 1: SHA-1 of the
// subjectPublicKey BIT STRING's content. A certificate's SKI usually is this.
Bytes key_identifier(EVP_PKEY* k);
bool same_public_key(EVP_PKEY* a, EVP_PKEY* b);

struct KeyDescription {
    std::string type;  // "rsa", "ec", "ed25519", ... ("other" if unknown)
    int bits = 0;
    std::string curve; // "P-256" for EC keys, else empty
};
KeyDescription describe_key(EVP_PKEY* k);

// --- names ----------------------------------------------------------------

// A distinguished name from the OpenSSL slash form "/CN=Alice/O=Example"
// (in order, `\` escapes) or the RFC 4514 / 2253 comma form
// "CN=Alice,O=Example" (most specific first). The error says what is wrong.
Result<X509NamePtr> parse_name(const std::string& text);
// RFC 2253 form, UTF-8 kept: "CN=Alice,O=Example".
std::string name_text(const X509_NAME* n);
// The (last) commonName, else "".
std::string common_name(const X509_NAME* n);

// --- certificate details --------------------------------------------------

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

// --- files ----------------------------------------------------------------

// The whole file ("-": standard input); the error says why not (rv CKR_OK).
Result<Bytes> read_file(const std::string& path);
// Writes `data` to `path` (mode 0644 less the umask: certificates and
// requests are public) through a new file renamed over it; a symbolic link
// or a device at `path` is refused, never written through. "" or why not.
std::string write_file(const std::string& path, std::span<const unsigned char> data);

// --- text -----------------------------------------------------------------

// Lowercase hex, and the parse of it (spaces and colons allowed; "" if bad).
std::string to_hex(std::span<const unsigned char> b);
std::optional<Bytes> from_hex(const std::string& s);
// "AB:CD:..." as OpenSSL prints fingerprints.
std::string colon_hex(std::span<const unsigned char> b);

} // namespace ukey::client
