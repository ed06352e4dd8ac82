// Certificates and keys on a Key: certificates are read without logging in
// (they are public objects), private keys are seen only after login; both
// parsed with OpenSSL (x509.h).
#pragma once

#include "client/module.h"
#include "client/x509.h"
#include "token/times.h"

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

// Times as the tools show them (token/times.h), under the names the client
// side has always used.
using ukey::days_until;
using ukey::iso8601;

} // namespace ukey::client
