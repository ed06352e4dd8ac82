// Key pairs, signing through PKCS#11 and verification with OpenSSL.
#pragma once

#include <ukey/pkcs11.h>

#include <openssl/evp.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace ukeytest {

enum class KeyKind { Rsa2048, EcP256 };
const char* to_string(KeyKind kind);

struct KeyPair {
    KeyKind kind;
    CK_OBJECT_HANDLE pub = CK_INVALID_HANDLE;
    CK_OBJECT_HANDLE priv = CK_INVALID_HANDLE;
};

// C_GenerateKeyPair: RSA-2048 (e = 65537) or EC P-256; CKA_LABEL and CKA_ID
// set to `label` on both halves, private key CKA_PRIVATE/CKA_SENSITIVE/CKA_SIGN.
// Requires a logged-in R/W session when `on_token` or for private objects.
KeyPair generate_key_pair(CK_FUNCTION_LIST* fl, CK_SESSION_HANDLE session, KeyKind kind,
                          const std::string& label, bool on_token = true);
// Looks an existing pair up by label (e.g. after C_Finalize/C_Initialize).
KeyPair find_key_pair(CK_FUNCTION_LIST* fl, CK_SESSION_HANDLE session, KeyKind kind,
                      const std::string& label);

// Signature mechanism used by sign()/verify(): CKM_SHA256_RSA_PKCS for RSA,
// CKM_ECDSA over a SHA-256 digest computed here for EC (SoftHSM2 2.6 has no
// CKM_ECDSA_SHA256).
CK_MECHANISM_TYPE sign_mechanism(KeyKind kind);

// C_SignInit + C_Sign (length query, then signature).
std::vector<uint8_t> sign(CK_FUNCTION_LIST* fl, CK_SESSION_HANDLE session, const KeyPair& key,
                          const std::vector<uint8_t>& data);

struct EvpPkeyFree {
    void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
using EvpPkey = std::unique_ptr<EVP_PKEY, EvpPkeyFree>;

// OpenSSL public key built from CKA_MODULUS/CKA_PUBLIC_EXPONENT or
// CKA_EC_PARAMS/CKA_EC_POINT read with C_GetAttributeValue.
EvpPkey public_key(CK_FUNCTION_LIST* fl, CK_SESSION_HANDLE session, const KeyPair& key);

// Verifies a sign() signature over `data` with OpenSSL. Thread-safe.
bool verify(EVP_PKEY* pub, KeyKind kind, const std::vector<uint8_t>& data,
            const std::vector<uint8_t>& signature);

// CKM_AES_KEY_GEN / CKM_GENERIC_SECRET_KEY_GEN secret keys (session objects
// unless on_token), with encrypt/decrypt/wrap/unwrap/derive (AES) or
// sign/verify (generic secret) allowed.
CK_OBJECT_HANDLE generate_aes_key(CK_FUNCTION_LIST* fl, CK_SESSION_HANDLE session,
                                  const std::string& label, bool on_token = false);
CK_OBJECT_HANDLE generate_hmac_key(CK_FUNCTION_LIST* fl, CK_SESSION_HANDLE session,
                                   const std::string& label, bool on_token = false);

}  // namespace ukeytest
