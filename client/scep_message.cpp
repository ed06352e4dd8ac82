// SCEP's messages (see scep_message.h): encoded and decoded here, carried
// by ScepClient (scep.cpp).
//
// The CA's answer is opened with RSA_private_decrypt, deprecated in OpenSSL
// 3.0, because the key is the on-Key RSA key (onkey_rsa.cpp), a legacy
// RSA_METHOD key.
#define OPENSSL_SUPPRESS_DEPRECATED 1

#include "client/scep_message.h"

#include "client/scep_trust.h"

#include <openssl/asn1.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/provider.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>

#include <algorithm>
#include <cctype>

namespace ukey::client {

namespace {

Error scep_error(const std::string& what)
{
    return Error{CKR_OK, what};
}

// --- the SCEP attributes ------------------------------------------------------

struct Nids {
    int message_type, pki_status, fail_info, sender_nonce, recipient_nonce, transaction_id;
};

const Nids& nids()
{
    static const Nids n = [] {
        auto make = [](const char* oid, const char* name) {
            int nid = OBJ_txt2nid(oid);
            return nid != NID_undef ? nid : OBJ_create(oid, name, name);
        };
        return Nids{make("2.16.840.1.113733.1.9.2", "scepMessageType"),
                    make("2.16.840.1.113733.1.9.3", "scepPkiStatus"),
                    make("2.16.840.1.113733.1.9.4", "scepFailInfo"),
                    make("2.16.840.1.113733.1.9.5", "scepSenderNonce"),
                    make("2.16.840.1.113733.1.9.6", "scepRecipientNonce"),
                    make("2.16.840.1.113733.1.9.7", "scepTransactionID")};
    }();
    return n;
}

bool add_printable(PKCS7_SIGNER_INFO* si, int nid, const std::string& value)
{
    OsslPtr<ASN1_STRING, ASN1_STRING_free> s(ASN1_STRING_type_new(V_ASN1_PRINTABLESTRING));
    if (!s || ASN1_STRING_set(s.get(), value.data(), static_cast<int>(value.size())) != 1 ||
        PKCS7_add_signed_attribute(si, nid, V_ASN1_PRINTABLESTRING, s.get()) != 1)
        return false;
    (void)s.release(); // the attribute owns it now
    return true;
}

bool add_octets(PKCS7_SIGNER_INFO* si, int nid, const Bytes& value)
{
    OsslPtr<ASN1_OCTET_STRING, ASN1_OCTET_STRING_free> s(ASN1_OCTET_STRING_new());
    if (!s || ASN1_OCTET_STRING_set(s.get(), value.data(), static_cast<int>(value.size())) != 1 ||
        PKCS7_add_signed_attribute(si, nid, V_ASN1_OCTET_STRING, s.get()) != 1)
        return false;
    (void)s.release(); // the attribute owns it now
    return true;
}

std::optional<std::string> attr_string(PKCS7_SIGNER_INFO* si, int nid)
{
    ASN1_TYPE* t = PKCS7_get_signed_attribute(si, nid);
    if (!t || (t->type != V_ASN1_PRINTABLESTRING && t->type != V_ASN1_UTF8STRING && t->type != V_ASN1_IA5STRING))
        return std::nullopt;
    const ASN1_STRING* s = t->value.asn1_string;
    return std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                       static_cast<std::size_t>(ASN1_STRING_length(s)));
}

std::optional<Bytes> attr_octets(PKCS7_SIGNER_INFO* si, int nid)
{
    ASN1_TYPE* t = PKCS7_get_signed_attribute(si, nid);
    if (!t || t->type != V_ASN1_OCTET_STRING)
        return std::nullopt;
    const ASN1_STRING* s = t->value.octet_string;
    const unsigned char* p = ASN1_STRING_get0_data(s);
    return Bytes(p, p + ASN1_STRING_length(s));
}

Bytes sha256(std::span<const unsigned char> d)
{
    Bytes md(32);
    unsigned int n = 0;
    EVP_Digest(d.data(), d.size(), md.data(), &n, EVP_sha256(), nullptr);
    md.resize(n);
    return md;
}
// The content of an enveloped PKCS#7 for `cert`, its key transport undone
// with `key` (the RSA key on the Key) and its content decrypted here.
// (PKCS7_decrypt is not used: OpenSSL 3.0 refuses it for a key whose RSA
// operations happen outside, while RSA_private_decrypt goes through it.)
Result<Bytes> open_envelope(PKCS7* env, EVP_PKEY* key, X509* cert)
{
    PKCS7_ENVELOPE* e = env->d.enveloped;
    if (!e || !e->enc_data || !e->enc_data->enc_data || !e->enc_data->algorithm)
        return scep_error("the CA's encrypted answer is incomplete");
    PKCS7_RECIP_INFO* ri = nullptr;
    for (int i = 0; i < sk_PKCS7_RECIP_INFO_num(e->recipientinfo); ++i) {
        PKCS7_RECIP_INFO* r = sk_PKCS7_RECIP_INFO_value(e->recipientinfo, i);
        if (r->issuer_and_serial &&
            X509_NAME_cmp(r->issuer_and_serial->issuer, X509_get_issuer_name(cert)) == 0 &&
            ASN1_INTEGER_cmp(r->issuer_and_serial->serial, X509_get0_serialNumber(cert)) == 0)
            ri = r;
    }
    if (!ri)
        return scep_error("the CA's answer is encrypted for another certificate, not this request's signer");
    RSA* rsa = const_cast<RSA*>(EVP_PKEY_get0_RSA(key));
    if (!rsa)
        return scep_error("the CA's answer needs an RSA key to decrypt");
    Bytes cek(static_cast<std::size_t>(RSA_size(rsa)));
    int n = RSA_private_decrypt(ASN1_STRING_length(ri->enc_key), ASN1_STRING_get0_data(ri->enc_key), cek.data(), rsa,
                                RSA_PKCS1_PADDING);
    if (n <= 0)
        return scep_error("the Key cannot decrypt the CA's answer (" + openssl_errors() +
                          "): it was not encrypted to this key");
    cek.resize(static_cast<std::size_t>(n));
    X509_ALGOR* alg = e->enc_data->algorithm;
    char name[80];
    OBJ_obj2txt(name, sizeof name, alg->algorithm, 0);
    CipherPtr cipher(EVP_CIPHER_fetch(nullptr, name, nullptr));
    if (!cipher) {
        // Some CAs (micromdm's scepserver) answer with single DES, which
        // OpenSSL 3 keeps in its legacy provider. The answer holds only
        // public certificates and its integrity comes from the CA's
        // signature, so it is opened with a private library context that
        // has the legacy provider, leaving the process's default alone.
        ERR_clear_error();
        // (Kept for the process's life, like OpenSSL's own default context.)
        static OSSL_LIB_CTX* legacy = [] {
            OsslPtr<OSSL_LIB_CTX, OSSL_LIB_CTX_free> lc(OSSL_LIB_CTX_new());
            if (lc && (!OSSL_PROVIDER_load(lc.get(), "default") || !OSSL_PROVIDER_load(lc.get(), "legacy")))
                lc.reset();
            return lc.release();
        }();
        if (legacy)
            cipher.reset(EVP_CIPHER_fetch(legacy, name, nullptr));
    }
    CipherCtxPtr c(EVP_CIPHER_CTX_new());
    Bytes out;
    bool ok = cipher && c && EVP_DecryptInit_ex(c.get(), cipher.get(), nullptr, nullptr, nullptr) == 1 &&
              EVP_CIPHER_asn1_to_param(c.get(), alg->parameter) > 0 &&
              static_cast<int>(cek.size()) == EVP_CIPHER_CTX_get_key_length(c.get()) &&
              EVP_DecryptInit_ex(c.get(), nullptr, nullptr, cek.data(), nullptr) == 1;
    if (ok) {
        const ASN1_OCTET_STRING* data = e->enc_data->enc_data;
        out.resize(static_cast<std::size_t>(ASN1_STRING_length(data)) + 32);
        int l1 = 0, l2 = 0;
        ok = EVP_DecryptUpdate(c.get(), out.data(), &l1, ASN1_STRING_get0_data(data), ASN1_STRING_length(data)) == 1 &&
             EVP_DecryptFinal_ex(c.get(), out.data() + l1, &l2) == 1;
        out.resize(ok ? static_cast<std::size_t>(l1 + l2) : 0);
    }
    OPENSSL_cleanse(cek.data(), cek.size());
    if (!ok)
        return scep_error(std::string("the CA's answer cannot be decrypted (") + name + ": " + openssl_errors() + ")");
    return out;
}

} // namespace

// A PKCS#7 degenerate certs-only bundle's certificates.
std::vector<X509Ptr> p7_certs(PKCS7* p7)
{
    std::vector<X509Ptr> out;
    STACK_OF(X509)* certs = nullptr;
    if (PKCS7_type_is_signed(p7) && p7->d.sign)
        certs = p7->d.sign->cert;
    for (int i = 0; certs && i < sk_X509_num(certs); ++i) {
        out.push_back(x509_ref(sk_X509_value(certs, i)));
    }
    return out;
}

std::string fail_info_text(int f)
{
    switch (f) {
    case 0:
        return "badAlg: the CA does not accept the algorithms used";
    case 1:
        return "badMessageCheck: the CA could not verify the request's signature (for a renewal: the CA does not "
               "accept the old certificate, or renewals are not allowed yet)";
    case 2:
        return "badRequest: the CA refused the request (a wrong challenge password, or a request it does not allow)";
    case 3:
        return "badTime: the request's signing time is too far from the CA's clock";
    case 4:
        return "badCertId: the CA does not know the certificate named";
    default:
        return "the CA gave no reason";
    }
}

ScepCaps parse_caps(std::string_view text)
{
    ScepCaps caps;
    std::size_t at = 0;
    while (at < text.size()) {
        std::size_t nl = text.find('\n', at);
        std::string line(text.substr(at, nl == std::string_view::npos ? std::string_view::npos : nl - at));
        at = nl == std::string::npos ? text.size() : nl + 1;
        while (!line.empty() && (line.back() == '\r' || line.back() == ' '))
            line.pop_back();
        if (line.empty())
            continue;
        std::string l = line;
        std::transform(l.begin(), l.end(), l.begin(), [](unsigned char c) { return char(std::tolower(c)); });
        caps.raw.push_back(line);
        if (l == "postpkioperation")
            caps.post = true;
        else if (l == "renewal")
            caps.renewal = true;
        else if (l == "sha-256")
            caps.sha256 = true;
        else if (l == "sha-512")
            caps.sha512 = true;
        else if (l == "aes")
            caps.aes = true;
        else if (l == "scepstandard")
            caps.post = caps.sha256 = caps.aes = true; // RFC 8894 3.5.2
    }
    return caps;
}

Result<std::vector<X509Ptr>> parse_ca_certs(std::span<const unsigned char> body, const std::string& url)
{
    std::vector<X509Ptr> certs;
    if (X509Ptr x = parse_der(body)) {
        certs.push_back(std::move(x));
    } else {
        const unsigned char* p = body.data();
        PKCS7Ptr p7(d2i_PKCS7(nullptr, &p, static_cast<long>(body.size())));
        if (p7)
            certs = p7_certs(p7.get());
    }
    ERR_clear_error();
    if (certs.empty())
        return scep_error("the CA's GetCACert answer is not a certificate nor a PKCS#7 bundle (" +
                          std::to_string(body.size()) + " bytes): is " + url + " a SCEP service?");
    return certs;
}

Result<PkiRequest> encode_pki_message(ScepMessage type, const Bytes& payload, const std::string& txid, X509* recipient,
                                      X509* signer_cert, EVP_PKEY* signer_key, const ScepCaps& caps)
{
    const Nids& n = nids();
    // The envelope: payload encrypted to the CA (or RA).
    X509Stack recips(sk_X509_new_null());
    BioPtr in(BIO_new_mem_buf(payload.data(), static_cast<int>(payload.size())));
    if (!recips || !in || !sk_X509_push(recips.get(), recipient))
        return scep_error("out of memory");
    PKCS7Ptr env(PKCS7_encrypt(recips.get(), in.get(), caps.aes ? EVP_aes_128_cbc() : EVP_des_ede3_cbc(), PKCS7_BINARY));
    if (!env)
        return scep_error("OpenSSL cannot encrypt the request to the CA (" + openssl_errors() + ")");
    const Bytes env_der = i2d_bytes(env.get(), i2d_PKCS7);

    // The signed pkiMessage.
    if (!caps.sha256 && !caps.sha512)
        return scep_error("the CA offers only SHA-1 for SCEP signatures (GetCACaps has no SHA-256): ukey does not "
                          "sign with SHA-1; ask the CA's operator to enable SHA-256");
    PKCS7Ptr p7(PKCS7_sign(nullptr, nullptr, nullptr, nullptr, PKCS7_PARTIAL | PKCS7_BINARY));
    if (!p7)
        return scep_error("OpenSSL cannot make a PKCS#7 message (" + openssl_errors() + ")");
    PKCS7_SIGNER_INFO* si = PKCS7_sign_add_signer(p7.get(), signer_cert, signer_key, EVP_sha256(), PKCS7_NOSMIMECAP);
    if (!si)
        return scep_error("OpenSSL cannot add the signer (" + openssl_errors() + ")");
    PkiRequest out;
    out.nonce.resize(16);
    if (RAND_bytes(out.nonce.data(), static_cast<int>(out.nonce.size())) != 1)
        return scep_error("no random bytes for the nonce (" + openssl_errors() + ")");
    const Bytes& nonce = out.nonce;
    if (!add_printable(si, n.message_type, std::to_string(static_cast<int>(type))) ||
        !add_printable(si, n.transaction_id, txid) || !add_octets(si, n.sender_nonce, nonce))
        return scep_error("OpenSSL cannot add the SCEP attributes (" + openssl_errors() + ")");
    BioPtr data(BIO_new_mem_buf(env_der.data(), static_cast<int>(env_der.size())));
    if (!data || PKCS7_final(p7.get(), data.get(), PKCS7_BINARY) != 1)
        return scep_error("signing the SCEP request on the Key failed (" + openssl_errors() +
                          "): is the Key still there and the key usable for signing?");
    out.der = i2d_bytes(p7.get(), i2d_PKCS7);
    return out;
}

Result<ScepReply> decode_cert_rep(std::span<const unsigned char> body, const std::vector<X509Ptr>& signers,
                                  const std::string& txid, const Bytes& nonce, X509* signer_cert, EVP_PKEY* signer_key)
{
    const Nids& n = nids();
    // The reply: signed by the pinned CA or its RA.
    const unsigned char* p = body.data();
    PKCS7Ptr reply(d2i_PKCS7(nullptr, &p, static_cast<long>(body.size())));
    if (!reply || !PKCS7_type_is_signed(reply.get())) {
        ERR_clear_error();
        return scep_error("the CA's answer is not a SCEP message (" + std::to_string(body.size()) +
                          " bytes that are not a signed PKCS#7): nothing was written to the Key");
    }
    auto signed_content = verify_signed(reply.get(), signers);
    if (!signed_content)
        return scep_error("the CA's answer is not signed by the pinned CA or its verified RA (" +
                          signed_content.error().message + "): it was ignored and nothing was written to the Key");
    const Bytes& inner = *signed_content;
    STACK_OF(PKCS7_SIGNER_INFO)* sis = PKCS7_get_signer_info(reply.get());
    PKCS7_SIGNER_INFO* rsi = sis && sk_PKCS7_SIGNER_INFO_num(sis) > 0 ? sk_PKCS7_SIGNER_INFO_value(sis, 0) : nullptr;
    if (!rsi)
        return scep_error("the CA's answer has no signer");
    auto status = attr_string(rsi, n.pki_status);
    auto rtx = attr_string(rsi, n.transaction_id);
    auto rnonce = attr_octets(rsi, n.recipient_nonce);
    auto mtype = attr_string(rsi, n.message_type);
    if (!status || !mtype || *mtype != "3")
        return scep_error("the CA's answer is not a CertRep (no pkiStatus or messageType 3)");
    if (!rtx || *rtx != txid)
        return scep_error("the CA's answer belongs to another transaction (transactionID differs)");
    if (!rnonce || *rnonce != nonce)
        return scep_error("the CA's answer does not echo this request's nonce (a replayed or foreign answer)");

    ScepReply r;
    if (*status == "2") {
        r.status = ScepStatus::failure;
        auto fi = attr_string(rsi, n.fail_info);
        r.fail_info = fi && fi->size() == 1 && (*fi)[0] >= '0' && (*fi)[0] <= '4' ? (*fi)[0] - '0' : -1;
        r.fail_text = fail_info_text(r.fail_info);
        return r;
    }
    if (*status == "3") {
        r.status = ScepStatus::pending;
        return r;
    }
    if (*status != "0")
        return scep_error("the CA's answer has an unknown pkiStatus '" + *status + "'");
    r.status = ScepStatus::success;
    p = inner.data();
    PKCS7Ptr renv(d2i_PKCS7(nullptr, &p, static_cast<long>(inner.size())));
    if (!renv || !PKCS7_type_is_enveloped(renv.get())) {
        ERR_clear_error();
        return scep_error("the CA's SUCCESS answer carries no encrypted certificate");
    }
    auto certs_der = open_envelope(renv.get(), signer_key, signer_cert);
    if (!certs_der)
        return certs_der.error();
    p = certs_der->data();
    PKCS7Ptr bundle(d2i_PKCS7(nullptr, &p, static_cast<long>(certs_der->size())));
    if (bundle)
        r.certs = p7_certs(bundle.get());
    ERR_clear_error();
    if (r.certs.empty())
        return scep_error("the CA's SUCCESS answer holds no certificate");
    return r;
}

std::string transaction_id_for(EVP_PKEY* pub)
{
    const Bytes der = i2d_bytes(pub, i2d_PUBKEY);
    return der.empty() ? std::string() : to_hex(sha256(der));
}

Bytes issuer_and_subject(const X509_NAME* issuer, const X509_NAME* subject)
{
    Bytes body = name_der(issuer);
    Bytes s = name_der(subject);
    body.insert(body.end(), s.begin(), s.end());
    Bytes out{0x30};
    if (body.size() < 128) {
        out.push_back(static_cast<unsigned char>(body.size()));
    } else if (body.size() < 256) {
        out.push_back(0x81);
        out.push_back(static_cast<unsigned char>(body.size()));
    } else {
        out.push_back(0x82);
        out.push_back(static_cast<unsigned char>(body.size() >> 8));
        out.push_back(static_cast<unsigned char>(body.size() & 0xff));
    }
    out.insert(out.end(), body.begin(), body.end());
    return out;
}

} // namespace ukey::client
