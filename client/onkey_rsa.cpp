// The on-Key RSA key for OpenSSL (see signer.h): an RSA_METHOD whose
// private operations are sign_raw()/decrypt_raw() with CKM_RSA_PKCS.
//
// The RSA_METHOD API is deprecated in OpenSSL 3.0 but still the way to make
// an EVP_PKEY whose private operations happen elsewhere without writing a
// provider (libp11 does the same); such keys are "foreign" and OpenSSL keeps
// them on its legacy code path.
#define OPENSSL_SUPPRESS_DEPRECATED 1

#include "client/signer.h"

#include <openssl/rsa.h>

#include <cstring>

namespace ukey::client {

namespace {

struct OnKey {
    const Session* s;
    CK_OBJECT_HANDLE h;
};

int ex_index()
{
    static const int idx = RSA_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
    return idx;
}

OnKey* onkey_of(RSA* rsa)
{
    return static_cast<OnKey*>(RSA_get_ex_data(rsa, ex_index()));
}

// One CKM_RSA_PKCS operation on the Key: a signature (priv_enc: `from` is
// the DigestInfo) or a decryption (priv_dec).
int on_key(bool decrypt, int flen, const unsigned char* from, unsigned char* to, RSA* rsa, int padding)
{
    OnKey* k = onkey_of(rsa);
    if (!k || padding != RSA_PKCS1_PADDING || flen < 0)
        return -1;
    const std::span<const unsigned char> in(from, static_cast<std::size_t>(flen));
    auto out = decrypt ? decrypt_raw(*k->s, k->h, CKM_RSA_PKCS, in) : sign_raw(*k->s, k->h, CKM_RSA_PKCS, in);
    if (!out || out->size() > static_cast<std::size_t>(RSA_size(rsa)))
        return -1;
    std::memcpy(to, out->data(), out->size());
    OPENSSL_cleanse(out->data(), out->size()); // a decrypted content key
    return static_cast<int>(out->size());
}

int priv_enc(int flen, const unsigned char* from, unsigned char* to, RSA* rsa, int padding)
{
    return on_key(false, flen, from, to, rsa, padding);
}

int priv_dec(int flen, const unsigned char* from, unsigned char* to, RSA* rsa, int padding)
{
    return on_key(true, flen, from, to, rsa, padding);
}

int finish(RSA* rsa)
{
    delete onkey_of(rsa);
    RSA_set_ex_data(rsa, ex_index(), nullptr);
    // OpenSSL's own clean-up (its Montgomery caches) still runs.
    auto base = RSA_meth_get_finish(RSA_PKCS1_OpenSSL());
    return base ? base(rsa) : 1;
}

const RSA_METHOD* onkey_method()
{
    static RSA_METHOD* m = [] {
        RSA_METHOD* meth = RSA_meth_dup(RSA_PKCS1_OpenSSL());
        RSA_meth_set1_name(meth, "ukey on-Key RSA");
        RSA_meth_set_priv_enc(meth, priv_enc);
        RSA_meth_set_priv_dec(meth, priv_dec);
        RSA_meth_set_finish(meth, finish);
        return meth;
    }();
    return m;
}

using RsaPtr = OsslPtr<RSA, RSA_free>;

} // namespace

Result<PKeyPtr> onkey_rsa_key(const Session& s, CK_OBJECT_HANDLE priv, EVP_PKEY* pub)
{
    if (EVP_PKEY_get_base_id(pub) != EVP_PKEY_RSA)
        return x509_error("SCEP needs an RSA key (the CA encrypts its answer to it); this key is not RSA");
    RsaPtr pub_rsa(EVP_PKEY_get1_RSA(pub));
    if (!pub_rsa)
        return x509_error("OpenSSL cannot read the RSA public key (" + openssl_errors() + ")");
    const BIGNUM *n = nullptr, *e = nullptr;
    RSA_get0_key(pub_rsa.get(), &n, &e, nullptr);
    RsaPtr rsa(RSA_new());
    BnPtr n2(BN_dup(n)), e2(BN_dup(e));
    if (!rsa || !n2 || !e2 || RSA_set0_key(rsa.get(), n2.get(), e2.get(), nullptr) != 1)
        return x509_error("OpenSSL cannot make an RSA key (" + openssl_errors() + ")");
    (void)n2.release(); // the RSA key owns them now
    (void)e2.release();
    RSA_set_method(rsa.get(), onkey_method());
    RSA_set_ex_data(rsa.get(), ex_index(), new OnKey{&s, priv});
    PKeyPtr pk(EVP_PKEY_new());
    if (!pk || EVP_PKEY_assign_RSA(pk.get(), rsa.get()) != 1)
        return x509_error("OpenSSL cannot make an RSA key (" + openssl_errors() + ")");
    (void)rsa.release(); // the EVP_PKEY owns it now
    return pk;
}

} // namespace ukey::client
