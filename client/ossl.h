// Ownership of OpenSSL objects in the client library and the tools: every
// object lives in one of these unique_ptrs, so no path frees by hand or
// forgets to.
#pragma once

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pkcs7.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>

namespace ukey::client {

// A unique_ptr deleter calling an OpenSSL free function.
template <auto F>
struct OsslFree {
    template <class T>
    void operator()(T* p) const { F(p); }
};

template <class T, auto F>
using OsslPtr = std::unique_ptr<T, OsslFree<F>>;

// (X509Ptr keeps its function-pointer deleter: tests build it as
// X509Ptr{nullptr, X509_free}.)
using X509Ptr = std::unique_ptr<X509, decltype(&X509_free)>;
using PKeyPtr = OsslPtr<EVP_PKEY, EVP_PKEY_free>;
using X509NamePtr = OsslPtr<X509_NAME, X509_NAME_free>;
using X509ReqPtr = OsslPtr<X509_REQ, X509_REQ_free>;
using X509AlgorPtr = OsslPtr<X509_ALGOR, X509_ALGOR_free>;
using X509ExtPtr = OsslPtr<X509_EXTENSION, X509_EXTENSION_free>;
using X509PubkeyPtr = OsslPtr<X509_PUBKEY, X509_PUBKEY_free>;
using X509StorePtr = OsslPtr<X509_STORE, X509_STORE_free>;
using X509StoreCtxPtr = OsslPtr<X509_STORE_CTX, X509_STORE_CTX_free>;
using PKCS7Ptr = OsslPtr<PKCS7, PKCS7_free>;
using BioPtr = OsslPtr<BIO, BIO_free_all>;
using BnPtr = OsslPtr<BIGNUM, BN_free>;
using PKeyCtxPtr = OsslPtr<EVP_PKEY_CTX, EVP_PKEY_CTX_free>;
using CipherPtr = OsslPtr<EVP_CIPHER, EVP_CIPHER_free>;
using CipherCtxPtr = OsslPtr<EVP_CIPHER_CTX, EVP_CIPHER_CTX_free>;
using GeneralNamesPtr = OsslPtr<GENERAL_NAMES, GENERAL_NAMES_free>;

// Memory OpenSSL allocated for us (OPENSSL_free is a macro, hence the lambda).
struct OsslMemFree {
    void operator()(void* p) const { OPENSSL_free(p); }
};
template <class T>
using OsslMem = std::unique_ptr<T, OsslMemFree>;

// A stack whose elements it does not own (sk_X509_free).
struct X509StackFree {
    void operator()(STACK_OF(X509) * s) const { sk_X509_free(s); }
};
using X509Stack = std::unique_ptr<STACK_OF(X509), X509StackFree>;
// A stack that owns its extensions.
struct ExtStackFree {
    void operator()(STACK_OF(X509_EXTENSION) * s) const { sk_X509_EXTENSION_pop_free(s, X509_EXTENSION_free); }
};
using ExtStack = std::unique_ptr<STACK_OF(X509_EXTENSION), ExtStackFree>;

// An owned reference to `x` (up_ref).
inline X509Ptr x509_ref(X509* x)
{
    if (x)
        X509_up_ref(x);
    return X509Ptr(x, X509_free);
}
inline PKeyPtr pkey_ref(EVP_PKEY* k)
{
    if (k)
        EVP_PKEY_up_ref(k);
    return PKeyPtr(k);
}

} // namespace ukey::client
