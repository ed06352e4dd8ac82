// Signing (and RSA decryption) on the Key: X.509 structures signed here
// (sign()), and an EVP_PKEY whose private operations are the Key's, for the
// structures OpenSSL signs itself (onkey_rsa_key(): SCEP's PKCS#7). Both go
// through sign_raw()/decrypt_raw(). The private key never leaves the Key;
// OpenSSL only hashes (where the Key's mechanism wants a hash) and encodes.
#pragma once

#include "client/module.h"
#include "client/x509.h"

#include <span>
#include <string>

namespace ukey::client {

enum class Hash { sha256, sha384, sha512 };

// "sha256" -> Hash::sha256; nullopt for anything else.
std::optional<Hash> hash_from_name(const std::string& name);
const char* hash_name(Hash h);

struct Signature {
    // What goes into an X.509/CMS signature BIT STRING or OCTET STRING: for
    // RSA the PKCS#1 v1.5 signature, for ECDSA a DER ECDSA-Sig-Value.
    Bytes value;
    // The DER AlgorithmIdentifier that names it (sha256WithRSAEncryption,
    // ecdsa-with-SHA384, ...).
    Bytes algorithm;
    // Which PKCS#11 mechanism produced it (for logs): CKM_SHA256_RSA_PKCS, ...
    CK_MECHANISM_TYPE mechanism = 0;

    // `algorithm` decoded, e.g. for X509_REQ_set1_signature_algo.
    X509AlgorPtr algorithm_identifier() const;
};

// Signs `tbs` (the DER to be signed, not a hash) with the private key `key`
// in session `s` (the user is logged in).
//  RSA: CKM_SHA<n>_RSA_PKCS over tbs, or CKM_RSA_PKCS over a DigestInfo when
//       the Key lacks the former.
//  EC:  CKM_ECDSA over the hash made here; the Key's raw r||s becomes DER.
// A key with CKA_ALWAYS_AUTHENTICATE needs `context_pin` (CKU_CONTEXT_SPECIFIC
// login); it is not wiped here.
Result<Signature> sign(const Session& s, CK_OBJECT_HANDLE key, std::span<const unsigned char> tbs, Hash hash,
                       Secret* context_pin = nullptr);

// One C_Sign with mechanism `type` over `data` (the two-call length
// protocol). A key with CKA_ALWAYS_AUTHENTICATE (`always_auth`) needs `pin`
// for its CKU_CONTEXT_SPECIFIC login; it is not wiped here.
Result<Bytes> sign_raw(const Session& s, CK_OBJECT_HANDLE key, CK_MECHANISM_TYPE type,
                       std::span<const unsigned char> data, bool always_auth = false, Secret* pin = nullptr);
// One C_Decrypt with mechanism `type`.
Result<Bytes> decrypt_raw(const Session& s, CK_OBJECT_HANDLE key, CK_MECHANISM_TYPE type,
                          std::span<const unsigned char> data);

// An EVP_PKEY for the RSA private key `priv` in session `s` (public half
// `pub`): OpenSSL's PKCS#1 v1.5 signatures and decryptions with it are
// CKM_RSA_PKCS on the Key (sign_raw, decrypt_raw), the way libp11 does it.
// `s` must outlive it.
Result<PKeyPtr> onkey_rsa_key(const Session& s, CK_OBJECT_HANDLE priv, EVP_PKEY* pub);

} // namespace ukey::client
