// SCEP over OpenSSL's PKCS#7 and HTTP client (see scep.h).
//
// The RSA_METHOD API is deprecated in OpenSSL 3.0 but still the way to make
// an EVP_PKEY whose private operations happen elsewhere without writing a
// provider (libp11 does the same); such keys are "foreign" and OpenSSL keeps
// them on its legacy code path.
#define OPENSSL_SUPPRESS_DEPRECATED 1

#include "client/scep.h"

#include "client/messages.h"

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/http.h>
#include <openssl/objects.h>
#include <openssl/provider.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <cstring>
#include <ctime>
#include <mutex>

namespace ukey::client {

namespace {

// --- the on-Key RSA key -----------------------------------------------------

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
// the DigestInfo) or a decryption (priv_dec); the two have the same shape.
int on_key(bool decrypt, int flen, const unsigned char* from, unsigned char* to, RSA* rsa, int padding)
{
    OnKey* k = onkey_of(rsa);
    if (!k || padding != RSA_PKCS1_PADDING)
        return -1;
    CK_MECHANISM mech{CKM_RSA_PKCS, nullptr, 0};
    CK_FUNCTION_LIST* f = k->s->f();
    const auto init = decrypt ? f->C_DecryptInit : f->C_SignInit;
    const auto run = decrypt ? f->C_Decrypt : f->C_Sign;
    if (init(k->s->handle(), &mech, k->h) != CKR_OK)
        return -1;
    CK_ULONG len = static_cast<CK_ULONG>(RSA_size(rsa));
    if (run(k->s->handle(), const_cast<unsigned char*>(from), static_cast<CK_ULONG>(flen), to, &len) != CKR_OK)
        return -1;
    return static_cast<int>(len);
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
    ASN1_STRING* s = ASN1_STRING_type_new(V_ASN1_PRINTABLESTRING);
    if (!s || ASN1_STRING_set(s, value.data(), static_cast<int>(value.size())) != 1 ||
        PKCS7_add_signed_attribute(si, nid, V_ASN1_PRINTABLESTRING, s) != 1) {
        ASN1_STRING_free(s);
        return false;
    }
    return true;
}

bool add_octets(PKCS7_SIGNER_INFO* si, int nid, const Bytes& value)
{
    ASN1_OCTET_STRING* s = ASN1_OCTET_STRING_new();
    if (!s || ASN1_OCTET_STRING_set(s, value.data(), static_cast<int>(value.size())) != 1 ||
        PKCS7_add_signed_attribute(si, nid, V_ASN1_OCTET_STRING, s) != 1) {
        ASN1_OCTET_STRING_free(s);
        return false;
    }
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

// Everything `b` gives until its end: a streamed (non-ASN.1) answer comes
// from the non-blocking socket, so a read may have to wait, until `until`.
std::optional<Bytes> read_all(BIO* b, std::time_t until, std::size_t max)
{
    Bytes out;
    unsigned char buf[4096];
    for (;;) {
        int n = BIO_read(b, buf, sizeof buf);
        if (n > 0) {
            out.insert(out.end(), buf, buf + n);
            if (out.size() > max)
                return std::nullopt;
            continue;
        }
        // A memory BIO (an ASN.1 answer read whole) says "retry" at its end.
        if (!BIO_should_retry(b) || BIO_eof(b))
            return out;
        if (BIO_wait(b, until, 100) <= 0)
            return std::nullopt;
    }
}

Bytes sha256(std::span<const unsigned char> d)
{
    Bytes md(32);
    unsigned int n = 0;
    EVP_Digest(d.data(), d.size(), md.data(), &n, EVP_sha256(), nullptr);
    md.resize(n);
    return md;
}

std::string url_encode(const std::string& s)
{
    static const char* hex = "0123456789ABCDEF";
    std::string out;
    for (unsigned char c : s) {
        if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
            out += char(c);
        } else {
            out += '%';
            out += hex[c >> 4];
            out += hex[c & 15];
        }
    }
    return out;
}

std::string base64(const Bytes& b)
{
    std::string out(4 * ((b.size() + 2) / 3) + 1, '\0');
    int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), b.data(), static_cast<int>(b.size()));
    out.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
    return out;
}

// A PKCS#7 degenerate certs-only bundle's certificates.
std::vector<X509Ptr> p7_certs(PKCS7* p7)
{
    std::vector<X509Ptr> out;
    STACK_OF(X509)* certs = nullptr;
    if (PKCS7_type_is_signed(p7) && p7->d.sign)
        certs = p7->d.sign->cert;
    for (int i = 0; certs && i < sk_X509_num(certs); ++i) {
        X509* x = sk_X509_value(certs, i);
        X509_up_ref(x);
        out.emplace_back(x, X509_free);
    }
    return out;
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
    EVP_CIPHER* cipher = EVP_CIPHER_fetch(nullptr, name, nullptr);
    if (!cipher) {
        // Some CAs (micromdm's scepserver) answer with single DES, which
        // OpenSSL 3 keeps in its legacy provider. The answer holds only
        // public certificates and its integrity comes from the CA's
        // signature, so it is opened with a private library context that
        // has the legacy provider, leaving the process's default alone.
        ERR_clear_error();
        static OSSL_LIB_CTX* legacy = [] {
            OSSL_LIB_CTX* lc = OSSL_LIB_CTX_new();
            if (lc && (!OSSL_PROVIDER_load(lc, "default") || !OSSL_PROVIDER_load(lc, "legacy"))) {
                OSSL_LIB_CTX_free(lc);
                lc = nullptr;
            }
            return lc;
        }();
        if (legacy)
            cipher = EVP_CIPHER_fetch(legacy, name, nullptr);
    }
    EVP_CIPHER_CTX* c = EVP_CIPHER_CTX_new();
    Bytes out;
    bool ok = cipher && c && EVP_DecryptInit_ex(c, cipher, nullptr, nullptr, nullptr) == 1 &&
              EVP_CIPHER_asn1_to_param(c, alg->parameter) > 0 &&
              static_cast<int>(cek.size()) == EVP_CIPHER_CTX_get_key_length(c) &&
              EVP_DecryptInit_ex(c, nullptr, nullptr, cek.data(), nullptr) == 1;
    if (ok) {
        const ASN1_OCTET_STRING* data = e->enc_data->enc_data;
        out.resize(static_cast<std::size_t>(ASN1_STRING_length(data)) + 32);
        int l1 = 0, l2 = 0;
        ok = EVP_DecryptUpdate(c, out.data(), &l1, ASN1_STRING_get0_data(data), ASN1_STRING_length(data)) == 1 &&
             EVP_DecryptFinal_ex(c, out.data() + l1, &l2) == 1;
        out.resize(ok ? static_cast<std::size_t>(l1 + l2) : 0);
    }
    OPENSSL_cleanse(cek.data(), cek.size());
    EVP_CIPHER_CTX_free(c);
    EVP_CIPHER_free(cipher);
    if (!ok)
        return scep_error(std::string("the CA's answer cannot be decrypted (") + name + ": " + openssl_errors() + ")");
    return out;
}

} // namespace

// --- public -----------------------------------------------------------------

Result<PKeyPtr> onkey_rsa_key(const Session& s, CK_OBJECT_HANDLE priv, EVP_PKEY* pub)
{
    if (EVP_PKEY_get_base_id(pub) != EVP_PKEY_RSA)
        return scep_error("SCEP needs an RSA key (the CA encrypts its answer to it); this key is not RSA");
    RSA* pub_rsa = EVP_PKEY_get1_RSA(pub);
    if (!pub_rsa)
        return scep_error("OpenSSL cannot read the RSA public key (" + openssl_errors() + ")");
    const BIGNUM *n = nullptr, *e = nullptr;
    RSA_get0_key(pub_rsa, &n, &e, nullptr);
    RSA* rsa = RSA_new();
    BIGNUM* n2 = BN_dup(n);
    BIGNUM* e2 = BN_dup(e);
    RSA_free(pub_rsa);
    if (!rsa || !n2 || !e2 || RSA_set0_key(rsa, n2, e2, nullptr) != 1) {
        BN_free(n2);
        BN_free(e2);
        RSA_free(rsa);
        return scep_error("OpenSSL cannot make an RSA key (" + openssl_errors() + ")");
    }
    RSA_set_method(rsa, onkey_method());
    RSA_set_ex_data(rsa, ex_index(), new OnKey{&s, priv});
    PKeyPtr pk(EVP_PKEY_new());
    if (!pk || EVP_PKEY_assign_RSA(pk.get(), rsa) != 1) {
        RSA_free(rsa);
        return scep_error("OpenSSL cannot make an RSA key (" + openssl_errors() + ")");
    }
    return pk;
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

ScepClient::ScepClient(std::string url, std::chrono::seconds timeout) : url_(std::move(url)), timeout_(timeout)
{
    char *host = nullptr, *port = nullptr, *path = nullptr, *query = nullptr, *frag = nullptr;
    int ssl = 0;
    if (OSSL_HTTP_parse_url(url_.c_str(), &ssl, nullptr, &host, &port, nullptr, &path, &query, &frag) == 1 && !ssl) {
        host_ = host;
        port_ = port;
        path_ = path;
        url_ok_ = true;
    }
    ERR_clear_error();
    OPENSSL_free(host);
    OPENSSL_free(port);
    OPENSSL_free(path);
    OPENSSL_free(query);
    OPENSSL_free(frag);
}

Result<Bytes> ScepClient::http(const std::string& query, const Bytes* post, const char* content_type)
{
    if (!url_ok_)
        return scep_error("the CA URL '" + url_ + "' is not an http:// URL (https is not supported: SCEP protects "
                          "its messages itself)");
    const std::string path = path_ + "?" + query;
    BIO* req = nullptr;
    if (post) {
        req = BIO_new_mem_buf(post->data(), static_cast<int>(post->size()));
        if (!req)
            return scep_error("out of memory");
    }
    ERR_clear_error();
    const std::time_t until = std::time(nullptr) + timeout_.count();
    // Every answer but GetCACaps's is DER, read whole by OpenSSL.
    const int asn1 = query.rfind("operation=GetCACaps", 0) == 0 ? 0 : 1;
    BIO* resp = OSSL_HTTP_transfer(nullptr, host_.c_str(), port_.c_str(), path.c_str(), 0, nullptr, nullptr, nullptr,
                                   nullptr, nullptr, nullptr, 0, nullptr, post ? content_type : nullptr, req, nullptr,
                                   asn1, 1024 * 1024, static_cast<int>(timeout_.count()), 0);
    BIO_free(req);
    if (!resp) {
        std::string why = openssl_errors();
        if (why.find("timeout") != std::string::npos || why.find("timed out") != std::string::npos)
            return scep_error("the CA at " + url_ + " did not answer within " + std::to_string(timeout_.count()) +
                              " s: check that it is up, or raise the timeout");
        if (why.find("asn1") != std::string::npos || why.find("ASN1") != std::string::npos)
            return scep_error("the CA's answer is not a SCEP message (not DER: " + why +
                              "): it was ignored and nothing was written to the Key");
        return scep_error("cannot talk to the CA at " + url_ + " (" + (why.empty() ? "no answer" : why) +
                          "): check the URL and that the CA is up");
    }
    auto out = read_all(resp, until, 1024 * 1024);
    BIO_free_all(resp);
    if (!out)
        return scep_error("the CA at " + url_ + " did not finish its answer within " +
                          std::to_string(timeout_.count()) + " s (or sent more than 1 MiB)");
    return *out;
}

Result<ScepCaps> ScepClient::get_caps()
{
    auto body = http("operation=GetCACaps", nullptr, nullptr);
    if (!body)
        return body.error();
    ScepCaps caps;
    std::string text(body->begin(), body->end());
    std::size_t at = 0;
    while (at < text.size()) {
        std::size_t nl = text.find('\n', at);
        std::string line = text.substr(at, nl == std::string::npos ? std::string::npos : nl - at);
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

Result<bool> ScepClient::get_ca(const std::string& fingerprint)
{
    auto body = http("operation=GetCACert", nullptr, nullptr);
    if (!body)
        return body.error();
    std::vector<X509Ptr> certs;
    const unsigned char* p = body->data();
    if (X509* x = d2i_X509(nullptr, &p, static_cast<long>(body->size())); x && p == body->data() + body->size()) {
        certs.emplace_back(x, X509_free);
    } else {
        X509_free(x);
        p = body->data();
        PKCS7Ptr p7(d2i_PKCS7(nullptr, &p, static_cast<long>(body->size())));
        if (p7)
            certs = p7_certs(p7.get());
    }
    ERR_clear_error();
    if (certs.empty())
        return scep_error("the CA's GetCACert answer is not a certificate nor a PKCS#7 bundle (" +
                          std::to_string(body->size()) + " bytes): is " + url_ + " a SCEP service?");
    trust_ = {};
    auto trust = scep_trust(certs, fingerprint, url_);
    if (!trust)
        return trust.error();
    trust_ = std::move(*trust);
    if (EVP_PKEY_get_base_id(X509_get0_pubkey(recipient())) != EVP_PKEY_RSA)
        return scep_error("the CA's SCEP certificate has no RSA key, so ukey cannot encrypt a request to it");
    return true;
}

Result<ScepReply> ScepClient::pki_operation(ScepMessage type, const Bytes& payload, const std::string& txid,
                                            X509* signer_cert, EVP_PKEY* signer_key, const ScepCaps& caps)
{
    if (!recipient())
        return scep_error("internal: GetCACert first");
    const Nids& n = nids();
    // The envelope: payload encrypted to the CA (or RA).
    STACK_OF(X509)* recips = sk_X509_new_null();
    sk_X509_push(recips, recipient());
    BIO* in = BIO_new_mem_buf(payload.data(), static_cast<int>(payload.size()));
    PKCS7Ptr env(PKCS7_encrypt(recips, in, caps.aes ? EVP_aes_128_cbc() : EVP_des_ede3_cbc(), PKCS7_BINARY));
    BIO_free(in);
    sk_X509_free(recips);
    if (!env)
        return scep_error("OpenSSL cannot encrypt the request to the CA (" + openssl_errors() + ")");
    Bytes env_der;
    {
        int len = i2d_PKCS7(env.get(), nullptr);
        env_der.resize(static_cast<std::size_t>(std::max(len, 0)));
        unsigned char* p = env_der.data();
        i2d_PKCS7(env.get(), &p);
    }

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
    Bytes nonce(16);
    RAND_bytes(nonce.data(), static_cast<int>(nonce.size()));
    if (!add_printable(si, n.message_type, std::to_string(static_cast<int>(type))) ||
        !add_printable(si, n.transaction_id, txid) || !add_octets(si, n.sender_nonce, nonce))
        return scep_error("OpenSSL cannot add the SCEP attributes (" + openssl_errors() + ")");
    BIO* data = BIO_new_mem_buf(env_der.data(), static_cast<int>(env_der.size()));
    int ok = PKCS7_final(p7.get(), data, PKCS7_BINARY);
    BIO_free(data);
    if (ok != 1)
        return scep_error("signing the SCEP request on the Key failed (" + openssl_errors() +
                          "): is the Key still there and the key usable for signing?");
    Bytes msg;
    {
        int len = i2d_PKCS7(p7.get(), nullptr);
        msg.resize(static_cast<std::size_t>(std::max(len, 0)));
        unsigned char* p = msg.data();
        i2d_PKCS7(p7.get(), &p);
    }

    Result<Bytes> body = caps.post ? http("operation=PKIOperation", &msg, "application/x-pki-message")
                                   : http("operation=PKIOperation&message=" + url_encode(base64(msg)), nullptr, nullptr);
    if (!body)
        return body.error();

    // The reply: signed by the pinned CA or its RA.
    const unsigned char* p = body->data();
    PKCS7Ptr reply(d2i_PKCS7(nullptr, &p, static_cast<long>(body->size())));
    if (!reply || !PKCS7_type_is_signed(reply.get())) {
        ERR_clear_error();
        return scep_error("the CA's answer is not a SCEP message (" + std::to_string(body->size()) +
                          " bytes that are not a signed PKCS#7): nothing was written to the Key");
    }
    auto signed_content = verify_signed(reply.get(), trust_.signers);
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
    unsigned char* der = nullptr;
    int len = i2d_PUBKEY(pub, &der);
    std::string out = len > 0 ? to_hex(sha256({der, static_cast<std::size_t>(len)})) : std::string();
    OPENSSL_free(der);
    return out;
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

Result<X509Ptr> self_signed(EVP_PKEY* pub, EVP_PKEY* key, const X509_NAME* subject)
{
    X509Ptr x(X509_new(), X509_free);
    Bytes serial(8);
    RAND_bytes(serial.data(), static_cast<int>(serial.size()));
    serial[0] &= 0x7f;
    BIGNUM* bn = BN_bin2bn(serial.data(), static_cast<int>(serial.size()), nullptr);
    bool ok = x && bn && X509_set_version(x.get(), X509_VERSION_3) && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x.get())) &&
              X509_set_subject_name(x.get(), subject) && X509_set_issuer_name(x.get(), subject) &&
              X509_gmtime_adj(X509_getm_notBefore(x.get()), -300) &&
              X509_gmtime_adj(X509_getm_notAfter(x.get()), 7 * 86400) && X509_set_pubkey(x.get(), pub);
    BN_free(bn);
    if (!ok || X509_sign(x.get(), key, EVP_sha256()) <= 0)
        return scep_error("cannot make the temporary self-signed certificate on the Key (" + openssl_errors() + ")");
    return x;
}

} // namespace ukey::client
