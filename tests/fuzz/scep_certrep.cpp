// Fuzz target: a SCEP CA's CertRep, the answer to PKIOperation
// (ScepClient::pki_operation in client/scep.cpp): a signed PKCS#7
// pkiMessage verified against the pinned CA (verify_signed), its SCEP
// attributes (messageType, pkiStatus, failInfo, transactionID,
// recipientNonce), and on success an enveloped PKCS#7 decrypted with the
// requester's key (open_envelope) that holds a certificate bundle.
//
// A fuzzer cannot forge the CA's signature nor guess the request's random
// nonce, so the fake CA (scep_http.h, keys in scep_fixtures.h) can build the
// answer around the input. The first byte picks how much of it is the input:
//   0: the whole HTTP body is the rest of the input (raw DER from the network);
//   1: the CA signs the rest as the pkiMessage's content, with attributes
//      chosen by bytes 1-3 (status, failInfo, which checks to break);
//   2: as 1, and the rest is first enveloped to the requester (AES-128-CBC):
//      the decrypted content is then the input (the certificate bundle).
#include "client/scep.h"
#include "scep_fixtures.h"
#include "scep_http.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/pkcs7.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>

using namespace ukey;
using client::Bytes;

namespace {

struct Pki {
    client::X509Ptr ca{nullptr, X509_free}, signer{nullptr, X509_free};
    client::PKeyPtr ca_key, signer_key;
};

client::X509Ptr cert(const char* pem)
{
    BIO* b = BIO_new_mem_buf(pem, -1);
    client::X509Ptr x(PEM_read_bio_X509(b, nullptr, nullptr, nullptr), X509_free);
    BIO_free(b);
    return x;
}

client::PKeyPtr key(const char* pem)
{
    BIO* b = BIO_new_mem_buf(pem, -1);
    client::PKeyPtr k(PEM_read_bio_PrivateKey(b, nullptr, nullptr, nullptr));
    BIO_free(b);
    return k;
}

const Pki& pki()
{
    static const Pki* p = [] {
        auto* p = new Pki;
        p->ca = cert(fuzz::ca_cert_pem);
        p->signer = cert(fuzz::signer_cert_pem);
        p->ca_key = key(fuzz::ca_key_pem);
        p->signer_key = key(fuzz::signer_key_pem);
        if (!p->ca || !p->signer || !p->ca_key || !p->signer_key)
            std::abort();
        return p;
    }();
    return *p;
}

Bytes der_of(PKCS7* p7)
{
    Bytes out(static_cast<std::size_t>(std::max(i2d_PKCS7(p7, nullptr), 0)));
    unsigned char* p = out.data();
    i2d_PKCS7(p7, &p);
    return out;
}

int nid(const char* oid)
{
    return OBJ_txt2nid(oid); // registered by the client before it sends
}

void add_string(PKCS7_SIGNER_INFO* si, int n, const std::string& v)
{
    ASN1_STRING* s = ASN1_STRING_type_new(V_ASN1_PRINTABLESTRING);
    ASN1_STRING_set(s, v.data(), static_cast<int>(v.size()));
    PKCS7_add_signed_attribute(si, n, V_ASN1_PRINTABLESTRING, s);
}

void add_octets(PKCS7_SIGNER_INFO* si, int n, const std::string& v)
{
    ASN1_OCTET_STRING* s = ASN1_OCTET_STRING_new();
    ASN1_OCTET_STRING_set(s, reinterpret_cast<const unsigned char*>(v.data()), static_cast<int>(v.size()));
    PKCS7_add_signed_attribute(si, n, V_ASN1_OCTET_STRING, s);
}

// The senderNonce and transactionID of the client's request.
void request_attrs(const std::string& body, std::string& nonce, std::string& txid)
{
    const unsigned char* p = reinterpret_cast<const unsigned char*>(body.data());
    std::unique_ptr<PKCS7, decltype(&PKCS7_free)> req(d2i_PKCS7(nullptr, &p, long(body.size())), PKCS7_free);
    STACK_OF(PKCS7_SIGNER_INFO)* sis = req ? PKCS7_get_signer_info(req.get()) : nullptr;
    if (!sis || sk_PKCS7_SIGNER_INFO_num(sis) < 1)
        return;
    PKCS7_SIGNER_INFO* si = sk_PKCS7_SIGNER_INFO_value(sis, 0);
    if (ASN1_TYPE* t = PKCS7_get_signed_attribute(si, nid("2.16.840.1.113733.1.9.5")); t && t->type == V_ASN1_OCTET_STRING)
        nonce.assign(reinterpret_cast<const char*>(ASN1_STRING_get0_data(t->value.octet_string)),
                     std::size_t(ASN1_STRING_length(t->value.octet_string)));
    if (ASN1_TYPE* t = PKCS7_get_signed_attribute(si, nid("2.16.840.1.113733.1.9.7")); t && t->type == V_ASN1_PRINTABLESTRING)
        txid.assign(reinterpret_cast<const char*>(ASN1_STRING_get0_data(t->value.asn1_string)),
                    std::size_t(ASN1_STRING_length(t->value.asn1_string)));
}

// The CA's answer for `input` (see the top of the file).
std::string answer(const std::string& input, const fuzz::HttpRequest& r)
{
    if (input.empty())
        return {};
    const unsigned mode = static_cast<unsigned char>(input[0]) % 3;
    if (mode == 0)
        return input.substr(1);
    const std::string head = input.substr(1, 3) + std::string(3, '\0');
    const unsigned char status = head[0], fail = head[1], flags = head[2];
    std::string content = input.size() > 4 ? input.substr(4) : std::string();
    const Pki& k = pki();
    if (mode == 2) {
        STACK_OF(X509)* to = sk_X509_new_null();
        sk_X509_push(to, k.signer.get());
        BIO* in = BIO_new_mem_buf(content.data(), static_cast<int>(content.size()));
        PKCS7* env = PKCS7_encrypt(to, in, EVP_aes_128_cbc(), PKCS7_BINARY);
        BIO_free(in);
        sk_X509_free(to);
        if (!env)
            return {};
        Bytes d = der_of(env);
        PKCS7_free(env);
        content.assign(d.begin(), d.end());
    }
    std::string nonce, txid;
    request_attrs(r.body, nonce, txid);
    if (flags & 1)
        nonce += "x";
    if (flags & 2)
        txid += "x";
    PKCS7* p7 = PKCS7_sign(nullptr, nullptr, nullptr, nullptr, PKCS7_PARTIAL | PKCS7_BINARY);
    PKCS7_SIGNER_INFO* si = PKCS7_sign_add_signer(p7, k.ca.get(), k.ca_key.get(), EVP_sha256(), PKCS7_NOSMIMECAP);
    static const char* statuses[] = {"0", "2", "3", "9"};
    add_string(si, nid("2.16.840.1.113733.1.9.2"), flags & 4 ? "2" : "3");
    add_string(si, nid("2.16.840.1.113733.1.9.3"), statuses[status & 3]);
    if (fail != 0)
        add_string(si, nid("2.16.840.1.113733.1.9.4"), std::string(1, char(fail)));
    add_string(si, nid("2.16.840.1.113733.1.9.7"), txid);
    add_octets(si, nid("2.16.840.1.113733.1.9.6"), nonce);
    BIO* data = BIO_new_mem_buf(content.data(), static_cast<int>(content.size()));
    PKCS7_final(p7, data, PKCS7_BINARY);
    BIO_free(data);
    Bytes d = der_of(p7);
    PKCS7_free(p7);
    ERR_clear_error();
    return std::string(d.begin(), d.end());
}

client::ScepClient& scep()
{
    static client::ScepClient* c = [] {
        auto& http = fuzz::HttpServer::instance();
        http.set_answer([](const fuzz::HttpRequest&) {
            Bytes d = client::to_der(pki().ca.get());
            return std::string(d.begin(), d.end());
        });
        auto* c = new client::ScepClient(http.url(), std::chrono::seconds(10));
        if (!c->get_ca(fuzz::ca_fingerprint))
            std::abort();
        return c;
    }();
    return *c;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    client::ScepClient& c = scep();
    std::string input(reinterpret_cast<const char*>(data), size);
    fuzz::HttpServer::instance().set_answer([input](const fuzz::HttpRequest& r) { return answer(input, r); });
    client::ScepCaps caps;
    caps.post = caps.sha256 = caps.aes = true;
    const Bytes payload{0x30, 0x03, 0x02, 0x01, 0x00}; // any DER will do: the fake CA never reads it
    auto r = c.pki_operation(client::ScepMessage::PKCSReq, payload, "fuzz-transaction", pki().signer.get(),
                             pki().signer_key.get(), caps);
    static const bool verbose = std::getenv("UKEY_FUZZ_VERBOSE") != nullptr; // to check what seeds reach
    if (verbose)
        std::fprintf(stderr, "scep_certrep: %s\n",
                     r ? ("status " + std::to_string(int(r->status)) + ", " + std::to_string(r->certs.size()) +
                          " certificates, " + r->fail_text).c_str()
                       : r.error().message.c_str());
    if (r) {
        (void)r->fail_text.size();
        for (auto& x : r->certs)
            client::cert_details(x.get());
    } else {
        (void)r.error().message.size();
    }
    ERR_clear_error();
    return 0;
}
