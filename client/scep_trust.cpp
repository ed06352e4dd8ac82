// Trust in a SCEP CA's certificates (see scep_trust.h).
#include "client/scep_trust.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>

#include <cctype>

namespace ukey::client {

namespace {

Error trust_error(const std::string& what)
{
    return Error{CKR_OK, what};
}

std::string fingerprint_of(X509* x)
{
    Bytes der = to_der(x);
    Bytes md(EVP_MAX_MD_SIZE);
    unsigned int n = 0;
    EVP_Digest(der.data(), der.size(), md.data(), &n, EVP_sha256(), nullptr);
    md.resize(n);
    return to_hex(md);
}

// keyUsage allows `bits` (X509_get_key_usage gives all bits when the
// certificate has no keyUsage extension, which RFC 5280 reads as "any").
bool usage_allows(X509* x, uint32_t bits)
{
    return (X509_get_key_usage(x) & bits) == bits;
}

} // namespace

Result<void> check_chain(X509* x, X509* anchor)
{
    X509StorePtr store(X509_STORE_new());
    X509StoreCtxPtr ctx(X509_STORE_CTX_new());
    std::string why = "out of memory";
    // Only the anchor: no certificate the network sent may help build the
    // chain. PARTIAL_CHAIN makes the anchor trusted even when it is an
    // intermediate CA (without it OpenSSL would look for its root).
    if (store && ctx && X509_STORE_add_cert(store.get(), anchor) == 1 &&
        X509_STORE_set_flags(store.get(), X509_V_FLAG_PARTIAL_CHAIN) == 1 &&
        X509_STORE_CTX_init(ctx.get(), store.get(), x, nullptr) == 1) {
        why = X509_verify_cert(ctx.get()) == 1 ? ""
                                                : X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx.get()));
    }
    ERR_clear_error();
    if (!why.empty())
        return Error{CKR_FUNCTION_FAILED, why};
    return {};
}

Result<ScepTrust> scep_trust(const std::vector<X509Ptr>& certs, const std::string& fingerprint,
                             const std::string& url)
{
    ScepTrust t;
    // Normalised as to_hex writes it; a fingerprint that is not hex
    // matches nothing and is shown as given.
    const auto parsed = from_hex(fingerprint);
    const std::string want = parsed ? to_hex(*parsed) : fingerprint;
    std::string seen;
    for (const auto& x : certs) {
        const std::string fp = fingerprint_of(x.get());
        seen += (seen.empty() ? "" : ", ") + fp;
        if (fp == want && !t.ca)
            t.ca = x509_ref(x.get());
    }
    if (!t.ca)
        return trust_error("the CA at " + url + " presented a certificate with SHA-256 fingerprint " + seen +
                           ", not the pinned " + want +
                           ": nothing was sent to it; if the CA really changed its certificate, update the "
                           "fingerprint in the config (or --ca-fingerprint)");

    // Other CA certificates (the pinned CA's own issuers, a next CA
    // certificate) are never used, so they need no check. Every other
    // certificate is an RA candidate and must verify.
    X509Ptr encrypt{nullptr, X509_free};
    for (const auto& x : certs) {
        if (x.get() == t.ca.get() || X509_cmp(x.get(), t.ca.get()) == 0 || X509_check_ca(x.get()) > 0)
            continue;
        if (auto chain = check_chain(x.get(), t.ca.get()); !chain)
            return trust_error("the CA at " + url + " presented an RA certificate (" +
                               name_text(X509_get_subject_name(x.get())) + ", SHA-256 " + fingerprint_of(x.get()) +
                               ") that does not verify against the pinned CA: " + chain.error().message +
                               "; someone between here and the CA may be posing as its RA, so nothing was sent");
        if (!encrypt && usage_allows(x.get(), KU_KEY_ENCIPHERMENT))
            encrypt = x509_ref(x.get());
        if (usage_allows(x.get(), KU_DIGITAL_SIGNATURE))
            t.signers.push_back(x509_ref(x.get()));
    }
    t.signers.push_back(x509_ref(t.ca.get()));
    t.recipient = encrypt ? std::move(encrypt) : x509_ref(t.ca.get());
    return t;
}

Result<Bytes> verify_signed(PKCS7* p7, const std::vector<X509Ptr>& signers)
{
    X509Stack sk(sk_X509_new_null());
    BioPtr content(BIO_new(BIO_s_mem()));
    if (!sk || !content)
        return trust_error("out of memory");
    for (const auto& x : signers)
        sk_X509_push(sk.get(), x.get());
    ERR_clear_error();
    // NOINTERN: the signer is looked up in `signers` only, never among the
    // certificates the message carries; NOVERIFY: those were verified
    // already (scep_trust), so no chain is built here.
    const int ok =
        PKCS7_verify(p7, sk.get(), nullptr, nullptr, content.get(), PKCS7_NOVERIFY | PKCS7_NOINTERN | PKCS7_BINARY);
    if (ok != 1)
        return trust_error(openssl_errors());
    const std::string text = bio_text(content.get());
    return Bytes(text.begin(), text.end());
}

} // namespace ukey::client
