// Public keys for ukey's tools: rebuilt from PKCS#11 attributes (a Key's
// public halves), described, compared, identified. Nothing here touches a Key.
#pragma once

#include "client/ossl.h"
#include "token/bytes.h"
#include "token/result.h"

#include <span>
#include <string>

namespace ukey::client {

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

} // namespace ukey::client
