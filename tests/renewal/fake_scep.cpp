// ukey-fake-scep: a misbehaving SCEP CA for the renewal tests (bad_ca.sh).
// It speaks enough SCEP (GetCACaps, GetCACert, PKIOperation over POST) to
// get as far as the answer, then answers the way --mode says:
//   ok        a proper certificate for the requested key (1 day)
//   pending   PENDING to the request, the certificate to the CertPoll after
//   stuck     PENDING, to the request and every CertPoll
//   get       as ok, but GetCACaps has no POSTPKIOperation: PKIOperation by GET
//   wrongkey  a certificate for another key, otherwise proper
//   expired   a certificate for the requested key that expired yesterday
//   failure   FAILURE, failInfo badRequest
//   garbage   200 OK with random bytes
//   hang      reads the request and never answers
// and with an RA (GetCACert then answers the CA and the RA certificate; the
// RA decrypts requests and signs answers, issuing as in ok):
//   ra          an RA certificate the CA issued (digitalSignature, keyEncipherment)
//   ra-nosign   the same, but keyEncipherment only: it may not sign answers
//   ra-expired  the same as ra, but expired yesterday
//   forged-ra   a man in the middle's RA: the CA's name as subject and issuer,
//               the CA's key identifier, signed by a key of its own
// Every PKIOperation is logged ("PKIOperation received") with the
// challenge password it carried if its envelope opened ("challenge: ...").
// One connection at a time, on 127.0.0.1 only. Test-only; never installed.
//
//   ukey-fake-scep --port P --ca-cert ca.pem --ca-key ca.key --mode M
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/pkcs7.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

namespace {

using Bytes = std::vector<unsigned char>;

X509* ca_cert = nullptr;
EVP_PKEY* ca_key = nullptr;
// The RA, if the mode has one; who decrypts requests and signs answers.
X509* ra_cert = nullptr;
EVP_PKEY* ra_key = nullptr;
X509* op_cert() { return ra_cert ? ra_cert : ca_cert; }
EVP_PKEY* op_key() { return ra_key ? ra_key : ca_key; }
std::string mode = "ok";
int nid_type, nid_status, nid_fail, nid_snonce, nid_rnonce, nid_txid;

int make_nid(const char* oid, const char* name)
{
    int nid = OBJ_txt2nid(oid);
    return nid != NID_undef ? nid : OBJ_create(oid, name, name);
}

Bytes der_of(PKCS7* p7)
{
    int len = i2d_PKCS7(p7, nullptr);
    Bytes out(static_cast<std::size_t>(len > 0 ? len : 0));
    unsigned char* p = out.data();
    i2d_PKCS7(p7, &p);
    return out;
}

std::string attr_string(PKCS7_SIGNER_INFO* si, int nid)
{
    ASN1_TYPE* t = PKCS7_get_signed_attribute(si, nid);
    if (!t || !t->value.asn1_string)
        return {};
    return std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(t->value.asn1_string)),
                       static_cast<std::size_t>(ASN1_STRING_length(t->value.asn1_string)));
}

void add_attr(PKCS7_SIGNER_INFO* si, int nid, int type, const std::string& v)
{
    ASN1_STRING* s = ASN1_STRING_type_new(type);
    ASN1_STRING_set(s, v.data(), static_cast<int>(v.size()));
    PKCS7_add_signed_attribute(si, nid, type, s);
}

X509* issue(X509_REQ* req, EVP_PKEY* key, long from_s, long to_s)
{
    static long serial = 100;
    X509* x = X509_new();
    X509_set_version(x, X509_VERSION_3);
    ASN1_INTEGER_set(X509_get_serialNumber(x), ++serial);
    X509_set_subject_name(x, X509_REQ_get_subject_name(req));
    X509_set_issuer_name(x, X509_get_subject_name(ca_cert));
    X509_gmtime_adj(X509_getm_notBefore(x), from_s);
    X509_gmtime_adj(X509_getm_notAfter(x), to_s);
    X509_set_pubkey(x, key);
    X509_sign(x, ca_key, EVP_sha256());
    return x;
}

// An RA certificate for a new key, issued in the CA's name and signed by
// `signer` (the CA's key, or for forged-ra the RA's own key).
X509* make_ra(EVP_PKEY* key, EVP_PKEY* signer, bool forged, const char* usage, long from_s, long to_s)
{
    X509* x = X509_new();
    X509_set_version(x, X509_VERSION_3);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 7001);
    X509_NAME* subject = X509_NAME_new();
    X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("ukey test RA"),
                               -1, -1, 0);
    X509_set_subject_name(x, forged ? X509_get_subject_name(ca_cert) : subject);
    X509_NAME_free(subject);
    X509_set_issuer_name(x, X509_get_subject_name(ca_cert));
    X509_gmtime_adj(X509_getm_notBefore(x), from_s);
    X509_gmtime_adj(X509_getm_notAfter(x), to_s);
    X509_set_pubkey(x, key);
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, ca_cert, x, nullptr, nullptr, 0);
    const std::pair<int, const char*> exts[] = {{NID_basic_constraints, "critical,CA:FALSE"},
                                                {NID_key_usage, usage},
                                                {NID_subject_key_identifier, "hash"},
                                                {NID_authority_key_identifier, "keyid:always"}};
    for (const auto& [nid, value] : exts) {
        X509_EXTENSION* e = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
        X509_add_ext(x, e, -1);
        X509_EXTENSION_free(e);
    }
    X509_sign(x, signer, EVP_sha256());
    return x;
}

X509_REQ* last_req = nullptr; // the pending request, for CertPoll

// A CertRep: status "0"/"2"/"3"; for success `cert` enveloped to `to`.
Bytes cert_rep(PKCS7_SIGNER_INFO* req_si, X509* to, const char* status, X509* cert)
{
    Bytes content;
    if (cert) {
        PKCS7* deg = PKCS7_new();
        PKCS7_set_type(deg, NID_pkcs7_signed);
        PKCS7_content_new(deg, NID_pkcs7_data);
        PKCS7_add_certificate(deg, cert);
        Bytes d = der_of(deg);
        PKCS7_free(deg);
        STACK_OF(X509)* r = sk_X509_new_null();
        sk_X509_push(r, to);
        BIO* in = BIO_new_mem_buf(d.data(), static_cast<int>(d.size()));
        PKCS7* env = PKCS7_encrypt(r, in, EVP_aes_128_cbc(), PKCS7_BINARY);
        BIO_free(in);
        sk_X509_free(r);
        content = der_of(env);
        PKCS7_free(env);
    }
    PKCS7* p7 = PKCS7_sign(nullptr, nullptr, nullptr, nullptr, PKCS7_PARTIAL | PKCS7_BINARY);
    PKCS7_SIGNER_INFO* si = PKCS7_sign_add_signer(p7, op_cert(), op_key(), EVP_sha256(), PKCS7_NOSMIMECAP);
    add_attr(si, nid_type, V_ASN1_PRINTABLESTRING, "3");
    add_attr(si, nid_status, V_ASN1_PRINTABLESTRING, status);
    add_attr(si, nid_txid, V_ASN1_PRINTABLESTRING, attr_string(req_si, nid_txid));
    add_attr(si, nid_rnonce, V_ASN1_OCTET_STRING, attr_string(req_si, nid_snonce));
    unsigned char nonce[16];
    RAND_bytes(nonce, sizeof nonce);
    add_attr(si, nid_snonce, V_ASN1_OCTET_STRING, std::string(reinterpret_cast<char*>(nonce), sizeof nonce));
    if (std::string(status) == "2")
        add_attr(si, nid_fail, V_ASN1_PRINTABLESTRING, "2");
    // No content (FAILURE, PENDING): an empty memory BIO (a null buffer
    // would give no BIO at all).
    BIO* data = content.empty() ? BIO_new(BIO_s_mem())
                                : BIO_new_mem_buf(content.data(), static_cast<int>(content.size()));
    PKCS7_final(p7, data, PKCS7_BINARY);
    BIO_free(data);
    Bytes out = der_of(p7);
    PKCS7_free(p7);
    return out;
}

Bytes pki_operation(const Bytes& body)
{
    const unsigned char* p = body.data();
    PKCS7* p7 = d2i_PKCS7(nullptr, &p, static_cast<long>(body.size()));
    if (!p7 || !PKCS7_type_is_signed(p7))
        return {};
    PKCS7_SIGNER_INFO* si = sk_PKCS7_SIGNER_INFO_value(PKCS7_get_signer_info(p7), 0);
    X509* signer = sk_X509_value(p7->d.sign->cert, 0);
    const std::string type = attr_string(si, nid_type);
    ASN1_OCTET_STRING* os = PKCS7_get_octet_string(p7->d.sign->contents);
    const unsigned char* q = ASN1_STRING_get0_data(os);
    PKCS7* env = d2i_PKCS7(nullptr, &q, ASN1_STRING_length(os));
    BIO* out = BIO_new(BIO_s_mem());
    PKCS7_decrypt(env, op_key(), op_cert(), out, PKCS7_BINARY);
    char* pd = nullptr;
    long n = BIO_get_mem_data(out, &pd);
    Bytes inner(pd, pd + n);
    BIO_free(out);
    PKCS7_free(env);
    if (type != "20") {
        const unsigned char* r = inner.data();
        if (X509_REQ* req = d2i_X509_REQ(nullptr, &r, static_cast<long>(inner.size()))) {
            int at = X509_REQ_get_attr_by_NID(req, NID_pkcs9_challengePassword, -1);
            ASN1_TYPE* t = at >= 0 ? X509_ATTRIBUTE_get0_type(X509_REQ_get_attr(req, at), 0) : nullptr;
            if (t && t->value.asn1_string)
                fprintf(stderr, "ukey-fake-scep: challenge: %.*s\n", ASN1_STRING_length(t->value.asn1_string),
                        reinterpret_cast<const char*>(ASN1_STRING_get0_data(t->value.asn1_string)));
            X509_REQ_free(req);
        }
    }
    Bytes reply;
    if (type == "20") { // CertPoll
        if (mode == "stuck") {
            reply = cert_rep(si, signer, "3", nullptr);
        } else if (last_req) {
            EVP_PKEY* k = X509_REQ_get0_pubkey(last_req);
            X509* x = issue(last_req, k, -60, 86400);
            reply = cert_rep(si, signer, "0", x);
            X509_free(x);
        } else {
            reply = cert_rep(si, signer, "2", nullptr);
        }
    } else {
        const unsigned char* r = inner.data();
        X509_REQ* req = d2i_X509_REQ(nullptr, &r, static_cast<long>(inner.size()));
        if (!req) {
            reply = cert_rep(si, signer, "2", nullptr);
        } else if (mode == "failure") {
            reply = cert_rep(si, signer, "2", nullptr);
        } else if (mode == "pending" || mode == "stuck") {
            X509_REQ_free(last_req);
            last_req = X509_REQ_dup(req);
            reply = cert_rep(si, signer, "3", nullptr);
        } else {
            EVP_PKEY* k = X509_REQ_get0_pubkey(req);
            EVP_PKEY* other = nullptr;
            if (mode == "wrongkey")
                other = EVP_RSA_gen(2048);
            X509* x = mode == "expired" ? issue(req, k, -10 * 86400, -86400) : issue(req, other ? other : k, -60, 86400);
            reply = cert_rep(si, signer, "0", x);
            X509_free(x);
            EVP_PKEY_free(other);
        }
        X509_REQ_free(req);
    }
    PKCS7_free(p7);
    return reply;
}

void respond(int fd, const std::string& type, const Bytes& body)
{
    std::string head = "HTTP/1.1 200 OK\r\nContent-Type: " + type + "\r\nContent-Length: " +
                       std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n";
    ssize_t w = write(fd, head.data(), head.size());
    if (!body.empty())
        w = write(fd, body.data(), body.size());
    (void)w;
}

void serve(int fd)
{
    std::string req;
    char buf[8192];
    std::size_t header_end = std::string::npos;
    std::size_t want = 0;
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n <= 0)
            break;
        req.append(buf, static_cast<std::size_t>(n));
        if (header_end == std::string::npos && (header_end = req.find("\r\n\r\n")) != std::string::npos) {
            std::string h = req.substr(0, header_end);
            for (auto& c : h)
                c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
            auto cl = h.find("content-length:");
            want = cl == std::string::npos ? 0 : std::strtoul(h.c_str() + cl + 15, nullptr, 10);
        }
        if (header_end != std::string::npos && req.size() >= header_end + 4 + want)
            break;
    }
    if (header_end == std::string::npos)
        return;
    Bytes body(req.begin() + static_cast<long>(header_end + 4), req.end());
    if (req.find("operation=GetCACaps") != std::string::npos) {
        const std::string caps = std::string(mode == "get" ? "" : "POSTPKIOperation\n") + "SHA-256\nAES\nRenewal\n";
        respond(fd, "text/plain", Bytes(caps.begin(), caps.end()));
    } else if (req.find("operation=GetCACert") != std::string::npos) {
        if (ra_cert) {
            // RFC 8894 4.2.1.2: a degenerate certs-only PKCS#7 of CA and RA.
            PKCS7* deg = PKCS7_new();
            PKCS7_set_type(deg, NID_pkcs7_signed);
            PKCS7_content_new(deg, NID_pkcs7_data);
            PKCS7_add_certificate(deg, ca_cert);
            PKCS7_add_certificate(deg, ra_cert);
            respond(fd, "application/x-x509-ca-ra-cert", der_of(deg));
            PKCS7_free(deg);
        } else {
            int len = i2d_X509(ca_cert, nullptr);
            Bytes der(static_cast<std::size_t>(len));
            unsigned char* p = der.data();
            i2d_X509(ca_cert, &p);
            respond(fd, "application/x-x509-ca-cert", der);
        }
    } else if (req.find("operation=PKIOperation") != std::string::npos) {
        fprintf(stderr, "ukey-fake-scep: PKIOperation received\n");
        if (mode == "hang") {
            sleep(600);
            return;
        }
        if (mode == "garbage") {
            Bytes junk(3000);
            RAND_bytes(junk.data(), static_cast<int>(junk.size()));
            respond(fd, "application/x-pki-message", junk);
            return;
        }
        if (req.rfind("GET ", 0) == 0) {
            // ?operation=PKIOperation&message=<URL-encoded base64>
            auto at = req.find("message=");
            std::string b64;
            for (std::size_t i = at == std::string::npos ? req.size() : at + 8;
                 i < req.size() && req[i] != ' ' && req[i] != '&'; ++i) {
                if (req[i] == '%' && i + 2 < req.size()) {
                    b64 += static_cast<char>(std::strtol(req.substr(i + 1, 2).c_str(), nullptr, 16));
                    i += 2;
                } else {
                    b64 += req[i];
                }
            }
            body.assign(b64.size(), 0);
            int n = EVP_DecodeBlock(body.data(), reinterpret_cast<const unsigned char*>(b64.data()),
                                    static_cast<int>(b64.size()));
            body.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
            while (!b64.empty() && b64.back() == '=') {
                b64.pop_back();
                if (!body.empty())
                    body.pop_back();
            }
        } else if (mode == "get") {
            respond(fd, "text/plain", {}); // POST not offered
            return;
        }
        respond(fd, "application/x-pki-message", pki_operation(body));
    } else {
        respond(fd, "text/plain", {});
    }
}

} // namespace

int main(int argc, char** argv)
{
    int port = 0;
    std::string cert_file, key_file;
    for (int i = 1; i + 1 < argc; i += 2) {
        std::string a = argv[i];
        if (a == "--port")
            port = std::atoi(argv[i + 1]);
        else if (a == "--ca-cert")
            cert_file = argv[i + 1];
        else if (a == "--ca-key")
            key_file = argv[i + 1];
        else if (a == "--mode")
            mode = argv[i + 1];
    }
    FILE* f = fopen(cert_file.c_str(), "r");
    ca_cert = f ? PEM_read_X509(f, nullptr, nullptr, nullptr) : nullptr;
    if (f)
        fclose(f);
    f = fopen(key_file.c_str(), "r");
    ca_key = f ? PEM_read_PrivateKey(f, nullptr, nullptr, nullptr) : nullptr;
    if (f)
        fclose(f);
    if (!ca_cert || !ca_key || !port) {
        fprintf(stderr, "usage: ukey-fake-scep --port P --ca-cert F --ca-key F --mode M\n");
        return 2;
    }
    if (mode == "ra" || mode == "ra-nosign" || mode == "ra-expired" || mode == "forged-ra") {
        ra_key = EVP_RSA_gen(2048);
        const bool forged = mode == "forged-ra";
        const char* usage = mode == "ra-nosign" ? "critical,keyEncipherment" : "critical,digitalSignature,keyEncipherment";
        ra_cert = mode == "ra-expired" ? make_ra(ra_key, ca_key, false, usage, -10 * 86400, -86400)
                                       : make_ra(ra_key, forged ? ra_key : ca_key, forged, usage, -60, 86400);
    }
    nid_type = make_nid("2.16.840.1.113733.1.9.2", "scepMessageType");
    nid_status = make_nid("2.16.840.1.113733.1.9.3", "scepPkiStatus");
    nid_fail = make_nid("2.16.840.1.113733.1.9.4", "scepFailInfo");
    nid_snonce = make_nid("2.16.840.1.113733.1.9.5", "scepSenderNonce");
    nid_rnonce = make_nid("2.16.840.1.113733.1.9.6", "scepRecipientNonce");
    nid_txid = make_nid("2.16.840.1.113733.1.9.7", "scepTransactionID");

    int s = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(s, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || listen(s, 8) != 0) {
        perror("ukey-fake-scep: bind");
        return 1;
    }
    for (;;) {
        int c = accept(s, nullptr, nullptr);
        if (c < 0)
            continue;
        serve(c);
        close(c);
    }
}
