// Certificates and keys on a Key: certificates are read without logging in
// (they are public objects), private keys are seen only after login; both
// parsed with OpenSSL (x509.h).
#pragma once

#include "client/module.h"
#include "client/x509.h"

#include <openssl/x509.h>

#include <ctime>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace ukey::client {

struct CertOnKey {
    CK_OBJECT_HANDLE handle = CK_INVALID_HANDLE;
    std::vector<unsigned char> id; // CKA_ID
    std::string label;             // CKA_LABEL
    std::vector<unsigned char> der;
    CK_ULONG category = 0; // CKA_CERTIFICATE_CATEGORY: 1 token user, 2 authority, 3 other

    X509Ptr parse() const;
};

// Every X.509 certificate object on the Key.
Result<std::vector<CertOnKey>> read_certificates(const Session& s);

// A private or public key object: who it is, and its public half as OpenSSL
// sees it (never a private value: only public attributes are read).
struct KeyOnKey {
    CK_OBJECT_HANDLE handle = CK_INVALID_HANDLE;
    CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY; // CKO_PRIVATE_KEY or CKO_PUBLIC_KEY
    CK_KEY_TYPE type = CKK_VENDOR_DEFINED;
    std::vector<unsigned char> id; // CKA_ID
    std::string label;             // CKA_LABEL
    int bits = 0;                  // RSA modulus bits, EC curve bits; 0 if unknown
    std::string curve;             // EC: "P-256"; else empty
    // From CKA_MODULUS/CKA_PUBLIC_EXPONENT or CKA_EC_PARAMS/CKA_EC_POINT; null
    // when the object does not show them (an EC private key has no point).
    PKeyPtr public_key;

    bool is_private() const { return cls == CKO_PRIVATE_KEY; }
    // "rsa", "ec", "ed25519" or "other"
    std::string type_name() const;
};

// Every private and public key object the session sees (private keys only
// after login), private keys first.
Result<std::vector<KeyOnKey>> read_keys(const Session& s);

// The key whose public half is `pub` (a private key preferred); null if none.
const KeyOnKey* key_matching(const std::vector<KeyOnKey>& keys, EVP_PKEY* pub);

// notBefore / notAfter as Unix time.
std::optional<std::time_t> not_before(const X509* x);
std::optional<std::time_t> not_after(const X509* x);
// Whole days from `now` to `t`: rounded up while t is ahead (1 in its last
// day), then 0 on the day it passed and minus the whole days since.
long days_until(std::time_t t, std::time_t now);
// "2026-11-21T09:30:00Z"
std::string iso8601(std::time_t t);

} // namespace ukey::client
