// What an enrolment or renewal does on the Key before the CA answers: the
// new RSA key pair (SCEP needs RSA: the CA encrypts its answer to the key)
// and the certificate request signed by it on the Key.
#pragma once

#include "client/module.h"
#include "client/secret.h"
#include "client/x509.h"

namespace ukey::client {

// The private key with CKA_ID `id`; an error (CKR_OBJECT_HANDLE_INVALID) if none.
Result<CK_OBJECT_HANDLE> private_key_with_id(const Session& s, const Bytes& id);

struct NewKeyPair {
    CK_OBJECT_HANDLE priv = CK_INVALID_HANDLE;
    PKeyPtr pub;
    Bytes id; // key_identifier(pub), set as CKA_ID on both halves
};
// An RSA key pair of `bits` made on the Key, labelled `label`.
Result<NewKeyPair> generate_rsa(const Session& s, CK_ULONG bits, const std::string& label);

// The DER request for `pub` with `subject`, the challenge password (if any)
// and `old`'s subjectAltName (if given), signed with `key` (on the Key,
// onkey_rsa_key). A failed signature is rv CKR_GENERAL_ERROR.
Result<Bytes> make_request(const X509_NAME* subject, EVP_PKEY* pub, EVP_PKEY* key, const Secret& challenge, X509* old);

// A self-signed certificate for `pub`, signed with `key` (on the Key): the
// signer certificate of a first enrolment (RFC 8894 2.3), valid a week.
Result<X509Ptr> self_signed(EVP_PKEY* pub, EVP_PKEY* key, const X509_NAME* subject);

} // namespace ukey::client
