// SCEP's messages without a CA or HTTP (client/scep_message.h): the
// pkiMessage ukey sends, read back as a CA reads it, and CertReps made here
// as a CA makes them (the fixture PKI of the SCEP fuzz targets), with every
// check decode_cert_rep makes broken once. Over HTTP against a real SCEP
// server: tests/renewal/scep.sh.
#include "client/scep_message.h"
#include "client/scep_trust.h"

#include "scep_fixtures.h"

#include <gtest/gtest.h>

#include <openssl/err.h>
#include <openssl/pem.h>

#include <string>

using namespace ukey;
using namespace ukey::client;

namespace {

X509Ptr cert(const char* pem)
{
    BioPtr b(BIO_new_mem_buf(pem, -1));
    return X509Ptr(PEM_read_bio_X509(b.get(), nullptr, nullptr, nullptr), X509_free);
}

PKeyPtr key(const char* pem)
{
    BioPtr b(BIO_new_mem_buf(pem, -1));
    return PKeyPtr(PEM_read_bio_PrivateKey(b.get(), nullptr, nullptr, nullptr));
}

int nid(const char* oid)
{
    int n = OBJ_txt2nid(oid);
    return n != NID_undef ? n : OBJ_create(oid, nullptr, nullptr);
}
const int message_type = nid("2.16.840.1.113733.1.9.2"), pki_status = nid("2.16.840.1.113733.1.9.3"),
          fail_info = nid("2.16.840.1.113733.1.9.4"), sender_nonce = nid("2.16.840.1.113733.1.9.5"),
          recipient_nonce = nid("2.16.840.1.113733.1.9.6"), transaction_id = nid("2.16.840.1.113733.1.9.7");

std::string attr_text(PKCS7_SIGNER_INFO* si, int n)
{
    ASN1_TYPE* t = PKCS7_get_signed_attribute(si, n);
    if (!t || t->type != V_ASN1_PRINTABLESTRING)
        return "(none)";
    return std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(t->value.asn1_string)),
                       static_cast<std::size_t>(ASN1_STRING_length(t->value.asn1_string)));
}

void add_text(PKCS7_SIGNER_INFO* si, int n, const std::string& v)
{
    ASN1_STRING* s = ASN1_STRING_type_new(V_ASN1_PRINTABLESTRING);
    ASN1_STRING_set(s, v.data(), static_cast<int>(v.size()));
    PKCS7_add_signed_attribute(si, n, V_ASN1_PRINTABLESTRING, s);
}

class ScepMessageTest : public ::testing::Test {
protected:
    X509Ptr ca = cert(fuzz::ca_cert_pem), signer = cert(fuzz::signer_cert_pem);
    PKeyPtr ca_key = key(fuzz::ca_key_pem), signer_key = key(fuzz::signer_key_pem);
    std::vector<X509Ptr> signers;
    const std::string txid = "4f1c";
    const Bytes nonce = Bytes(16, 0x5a);
    // The content of an answer that carries no certificate (any bytes: only
    // a SUCCESS is opened).
    const Bytes filler = {0x05, 0x00};

    void SetUp() override
    {
        ASSERT_TRUE(ca && signer && ca_key && signer_key);
        signers.push_back(x509_ref(ca.get()));
    }

    // A CertRep as the CA sends it: `status`, the request's `txid` and
    // `nonce` echoed, signed by `by`/`by_key`, holding `content` (enveloped
    // to the requester when `envelope`).
    Bytes cert_rep(const std::string& status, Bytes content, bool envelope, const std::string& rep_txid,
                   const Bytes& rep_nonce, X509* by, EVP_PKEY* by_key, const std::string& fail = "")
    {
        if (envelope) {
            X509Stack to(sk_X509_new_null());
            sk_X509_push(to.get(), signer.get());
            BioPtr in(BIO_new_mem_buf(content.data(), static_cast<int>(content.size())));
            PKCS7Ptr env(PKCS7_encrypt(to.get(), in.get(), EVP_aes_128_cbc(), PKCS7_BINARY));
            content = i2d_bytes(env.get(), i2d_PKCS7);
        }
        PKCS7Ptr p7(PKCS7_sign(nullptr, nullptr, nullptr, nullptr, PKCS7_PARTIAL | PKCS7_BINARY));
        PKCS7_SIGNER_INFO* si = PKCS7_sign_add_signer(p7.get(), by, by_key, EVP_sha256(), PKCS7_NOSMIMECAP);
        add_text(si, message_type, "3");
        add_text(si, pki_status, status);
        if (!fail.empty())
            add_text(si, fail_info, fail);
        add_text(si, transaction_id, rep_txid);
        ASN1_OCTET_STRING* n = ASN1_OCTET_STRING_new();
        ASN1_OCTET_STRING_set(n, rep_nonce.data(), static_cast<int>(rep_nonce.size()));
        PKCS7_add_signed_attribute(si, recipient_nonce, V_ASN1_OCTET_STRING, n);
        BioPtr data(BIO_new_mem_buf(content.data(), static_cast<int>(content.size())));
        PKCS7_final(p7.get(), data.get(), PKCS7_BINARY);
        ERR_clear_error();
        return i2d_bytes(p7.get(), i2d_PKCS7);
    }

    // A certs-only bundle of the CA certificate (what a SUCCESS carries).
    Bytes bundle()
    {
        PKCS7Ptr p7(PKCS7_new());
        PKCS7_set_type(p7.get(), NID_pkcs7_signed);
        PKCS7_content_new(p7.get(), NID_pkcs7_data);
        PKCS7_add_certificate(p7.get(), ca.get());
        return i2d_bytes(p7.get(), i2d_PKCS7);
    }

    Result<ScepReply> decode(std::span<const unsigned char> body)
    {
        return decode_cert_rep(body, signers, txid, nonce, signer.get(), signer_key.get());
    }

    std::string error_of(std::span<const unsigned char> body)
    {
        auto r = decode(body);
        EXPECT_FALSE(r);
        return r ? std::string() : r.error().message;
    }
};

TEST(ScepCaps, OneCapabilityALineAnyCase)
{
    ScepCaps c = parse_caps("POSTPKIOperation\r\nsha-256\n\nAES \nRenewal");
    EXPECT_TRUE(c.post);
    EXPECT_TRUE(c.sha256);
    EXPECT_TRUE(c.aes);
    EXPECT_TRUE(c.renewal);
    EXPECT_FALSE(c.sha512);
    EXPECT_EQ(c.raw, (std::vector<std::string>{"POSTPKIOperation", "sha-256", "AES", "Renewal"}));
    ScepCaps s = parse_caps("SCEPStandard\n");
    EXPECT_TRUE(s.post && s.sha256 && s.aes);
    EXPECT_FALSE(s.renewal);
    ScepCaps none = parse_caps("");
    EXPECT_FALSE(none.post || none.sha256 || none.aes || none.renewal);
}

TEST_F(ScepMessageTest, CaCertificatesFromDerOrABundle)
{
    auto one = parse_ca_certs(to_der(ca.get()), "http://ca");
    ASSERT_TRUE(one);
    EXPECT_EQ(one->size(), 1u);
    auto two = parse_ca_certs(bundle(), "http://ca");
    ASSERT_TRUE(two);
    EXPECT_EQ(two->size(), 1u);
    auto bad = parse_ca_certs(as_bytes("<html>"), "http://ca.example/scep");
    ASSERT_FALSE(bad);
    EXPECT_NE(bad.error().message.find("http://ca.example/scep"), std::string::npos);
}

TEST_F(ScepMessageTest, ThePkiMessageIsWhatACaReads)
{
    ScepCaps caps;
    caps.sha256 = caps.aes = true;
    const Bytes csr = {0x30, 0x03, 0x02, 0x01, 0x07};
    auto req = encode_pki_message(ScepMessage::PKCSReq, csr, txid, ca.get(), signer.get(), signer_key.get(), caps);
    ASSERT_TRUE(req) << req.error().message;
    EXPECT_EQ(req->nonce.size(), 16u);

    const unsigned char* p = req->der.data();
    PKCS7Ptr p7(d2i_PKCS7(nullptr, &p, static_cast<long>(req->der.size())));
    ASSERT_TRUE(p7);
    std::vector<X509Ptr> by;
    by.push_back(x509_ref(signer.get()));
    auto inner = verify_signed(p7.get(), by);
    ASSERT_TRUE(inner) << inner.error().message;
    PKCS7_SIGNER_INFO* si = sk_PKCS7_SIGNER_INFO_value(PKCS7_get_signer_info(p7.get()), 0);
    EXPECT_EQ(attr_text(si, message_type), "19");
    EXPECT_EQ(attr_text(si, transaction_id), txid);
    ASN1_TYPE* n = PKCS7_get_signed_attribute(si, sender_nonce);
    ASSERT_TRUE(n && n->type == V_ASN1_OCTET_STRING);
    EXPECT_EQ(Bytes(ASN1_STRING_get0_data(n->value.octet_string),
                    ASN1_STRING_get0_data(n->value.octet_string) + ASN1_STRING_length(n->value.octet_string)),
              req->nonce);

    // The CA opens the envelope with its key and finds the request.
    p = inner->data();
    PKCS7Ptr env(d2i_PKCS7(nullptr, &p, static_cast<long>(inner->size())));
    ASSERT_TRUE(env && PKCS7_type_is_enveloped(env.get()));
    BioPtr out(BIO_new(BIO_s_mem()));
    ASSERT_EQ(PKCS7_decrypt(env.get(), ca_key.get(), ca.get(), out.get(), 0), 1);
    EXPECT_EQ(bio_text(out.get()), std::string(csr.begin(), csr.end()));

    caps.sha256 = false;
    auto sha1 = encode_pki_message(ScepMessage::PKCSReq, csr, txid, ca.get(), signer.get(), signer_key.get(), caps);
    ASSERT_FALSE(sha1);
    EXPECT_NE(sha1.error().message.find("SHA-1"), std::string::npos);
}

TEST_F(ScepMessageTest, SuccessCarriesTheCertificates)
{
    auto r = decode(cert_rep("0", bundle(), true, txid, nonce, ca.get(), ca_key.get()));
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->status, ScepStatus::success);
    ASSERT_EQ(r->certs.size(), 1u);
    EXPECT_EQ(X509_cmp(r->certs[0].get(), ca.get()), 0);
}

TEST_F(ScepMessageTest, PendingAndFailureAreAnswersNotErrors)
{
    auto pending = decode(cert_rep("3", filler, false, txid, nonce, ca.get(), ca_key.get()));
    ASSERT_TRUE(pending);
    EXPECT_EQ(pending->status, ScepStatus::pending);
    auto refused = decode(cert_rep("2", filler, false, txid, nonce, ca.get(), ca_key.get(), "2"));
    ASSERT_TRUE(refused);
    EXPECT_EQ(refused->status, ScepStatus::failure);
    EXPECT_EQ(refused->fail_info, 2);
    EXPECT_NE(refused->fail_text.find("badRequest"), std::string::npos);
    auto odd = decode(cert_rep("2", filler, false, txid, nonce, ca.get(), ca_key.get(), "9"));
    ASSERT_TRUE(odd);
    EXPECT_EQ(odd->fail_info, -1);
}

TEST_F(ScepMessageTest, EveryCheckRefusesItsForgery)
{
    EXPECT_NE(error_of(as_bytes("not DER")).find("not a SCEP message"), std::string::npos);
    // Signed by the requester's own certificate, not the pinned CA.
    EXPECT_NE(error_of(cert_rep("0", bundle(), true, txid, nonce, signer.get(), signer_key.get()))
                  .find("not signed by the pinned CA"),
              std::string::npos);
    EXPECT_NE(error_of(cert_rep("0", bundle(), true, "other", nonce, ca.get(), ca_key.get())).find("transaction"),
              std::string::npos);
    EXPECT_NE(error_of(cert_rep("0", bundle(), true, txid, Bytes(16, 1), ca.get(), ca_key.get())).find("nonce"),
              std::string::npos);
    EXPECT_NE(error_of(cert_rep("7", filler, false, txid, nonce, ca.get(), ca_key.get())).find("unknown pkiStatus"),
              std::string::npos);
    EXPECT_NE(error_of(cert_rep("0", bundle(), false, txid, nonce, ca.get(), ca_key.get())).find("no encrypted"),
              std::string::npos);
    const Bytes junk = {'j', 'u', 'n', 'k'};
    EXPECT_NE(error_of(cert_rep("0", junk, true, txid, nonce, ca.get(), ca_key.get())).find("holds no certificate"),
              std::string::npos);
}

TEST(ScepIds, TransactionIdAndIssuerAndSubject)
{
    PKeyPtr k(EVP_EC_gen("P-256"));
    const std::string id = transaction_id_for(k.get());
    EXPECT_EQ(id.size(), 64u);
    EXPECT_EQ(id, transaction_id_for(k.get()));
    X509NamePtr a(X509_NAME_new()), b(X509_NAME_new());
    X509_NAME_add_entry_by_txt(a.get(), "CN", MBSTRING_UTF8, reinterpret_cast<const unsigned char*>("CA"), -1, -1, 0);
    X509_NAME_add_entry_by_txt(b.get(), "CN", MBSTRING_UTF8, reinterpret_cast<const unsigned char*>("Alice"), -1, -1,
                               0);
    Bytes ias = issuer_and_subject(a.get(), b.get());
    const Bytes an = name_der(a.get()), bn = name_der(b.get());
    ASSERT_EQ(ias.size(), 2 + an.size() + bn.size());
    EXPECT_EQ(ias[0], 0x30);
    EXPECT_EQ(ias[1], an.size() + bn.size());
}

} // namespace
