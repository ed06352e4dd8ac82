// Which of GetCACert's certificates ukey trusts (client/scep_trust.h),
// with certificates made here: a proper RA, forged ones, expired ones, RAs
// with and without keyUsage, a pinned intermediate CA, and answers signed by
// certificates that are and are not trusted. The end to end case (a fake CA
// serving a forged RA to `ukey renew`) is tests/renewal/forged_ra.sh.
#include "client/scep_trust.h"

#include <gtest/gtest.h>

#include <openssl/evp.h>
#include <openssl/pkcs7.h>
#include <openssl/x509v3.h>

#include <string>
#include <vector>

using namespace ukey::client;

namespace {

// "" for success, else the error's sentence.
std::string why(const ukey::Result<void>& r)
{
    return r ? "" : r.error().message;
}

// A fresh key each time (EC: quick to make; what is checked here does not
// depend on the key type).
PKeyPtr new_key()
{
    return PKeyPtr(EVP_EC_gen("P-256"));
}

struct Made {
    X509Ptr cert{nullptr, X509_free};
    PKeyPtr key;
};

// A certificate for a new key named CN=`cn`, issued by `issuer` (signed by
// `signer`, normally the issuer's key; null issuer: self-signed).
Made make(const std::string& cn, const Made* issuer, bool ca, const char* usage, long from_s = -60,
          long to_s = 86400, EVP_PKEY* signer = nullptr, const X509_NAME* subject = nullptr)
{
    static long serial = 1;
    Made m;
    m.key = new_key();
    m.cert.reset(X509_new());
    X509* x = m.cert.get();
    X509_set_version(x, X509_VERSION_3);
    ASN1_INTEGER_set(X509_get_serialNumber(x), ++serial);
    X509_NAME* n = X509_NAME_new();
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8, reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
    X509_set_subject_name(x, subject ? subject : n);
    X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer->cert.get()) : n);
    X509_NAME_free(n);
    X509_gmtime_adj(X509_getm_notBefore(x), from_s);
    X509_gmtime_adj(X509_getm_notAfter(x), to_s);
    X509_set_pubkey(x, m.key.get());
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, issuer ? issuer->cert.get() : x, x, nullptr, nullptr, 0);
    std::vector<std::pair<int, std::string>> exts = {
        {NID_basic_constraints, ca ? "critical,CA:TRUE" : "critical,CA:FALSE"},
        {NID_subject_key_identifier, "hash"},
        {NID_authority_key_identifier, "keyid:always"}};
    if (usage)
        exts.emplace_back(NID_key_usage, usage);
    for (const auto& [nid, value] : exts) {
        X509_EXTENSION* e = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
        EXPECT_NE(e, nullptr) << value;
        X509_add_ext(x, e, -1);
        X509_EXTENSION_free(e);
    }
    X509_sign(x, signer ? signer : issuer ? issuer->key.get() : m.key.get(), EVP_sha256());
    return m;
}

std::string fp(X509* x)
{
    Bytes der = to_der(x);
    unsigned char md[32];
    unsigned int n = 0;
    EVP_Digest(der.data(), der.size(), md, &n, EVP_sha256(), nullptr);
    return to_hex({md, n});
}

std::vector<X509Ptr> bundle(std::initializer_list<const Made*> ms)
{
    std::vector<X509Ptr> out;
    for (const Made* m : ms) {
        X509_up_ref(m->cert.get());
        out.emplace_back(m->cert.get(), X509_free);
    }
    return out;
}

bool among(const std::vector<X509Ptr>& v, X509* x)
{
    for (const auto& c : v)
        if (X509_cmp(c.get(), x) == 0)
            return true;
    return false;
}

// A pkiMessage-like signed PKCS#7 of `data`, signed by `cert`/`key`, which
// also carries `cert`.
PKCS7* signed_by(X509* cert, EVP_PKEY* key, const std::string& data)
{
    BIO* in = BIO_new_mem_buf(data.data(), int(data.size()));
    PKCS7* p7 = PKCS7_sign(cert, key, nullptr, in, PKCS7_BINARY | PKCS7_NOSMIMECAP);
    BIO_free(in);
    return p7;
}

class ScepTrustTest : public ::testing::Test {
protected:
    static void SetUpTestSuite()
    {
        ca = new Made(make("Test SCEP CA", nullptr, true, "critical,keyCertSign,cRLSign"));
    }
    static Made* ca;
};
Made* ScepTrustTest::ca = nullptr;

} // namespace

TEST_F(ScepTrustTest, TheCaAloneIsRecipientAndSigner)
{
    auto t = scep_trust(bundle({ca}), fp(ca->cert.get()), "http://ca");
    ASSERT_TRUE(t) << t.error().message;
    EXPECT_EQ(X509_cmp(t->recipient.get(), ca->cert.get()), 0);
    ASSERT_EQ(t->signers.size(), 1u);
    EXPECT_EQ(X509_cmp(t->signers[0].get(), ca->cert.get()), 0);
}

TEST_F(ScepTrustTest, AWrongFingerprintIsRefused)
{
    auto t = scep_trust(bundle({ca}), std::string(64, '0'), "http://ca");
    ASSERT_FALSE(t);
    EXPECT_NE(t.error().message.find("not the pinned"), std::string::npos) << t.error().message;
}

TEST_F(ScepTrustTest, AProperRaReceivesAndSigns)
{
    Made ra = make("Test RA", ca, false, "critical,digitalSignature,keyEncipherment");
    auto t = scep_trust(bundle({&ra, ca}), fp(ca->cert.get()), "http://ca");
    ASSERT_TRUE(t) << t.error().message;
    EXPECT_EQ(X509_cmp(t->recipient.get(), ra.cert.get()), 0);
    EXPECT_TRUE(among(t->signers, ra.cert.get()));
    EXPECT_TRUE(among(t->signers, ca->cert.get()));
}

TEST_F(ScepTrustTest, AnRaWithoutKeyUsageMayDoBoth)
{
    Made ra = make("Test RA", ca, false, nullptr);
    auto t = scep_trust(bundle({ca, &ra}), fp(ca->cert.get()), "http://ca");
    ASSERT_TRUE(t) << t.error().message;
    EXPECT_EQ(X509_cmp(t->recipient.get(), ra.cert.get()), 0);
    EXPECT_TRUE(among(t->signers, ra.cert.get()));
}

TEST_F(ScepTrustTest, AnEncryptionOnlyRaDoesNotSign)
{
    Made enc = make("Test RA enc", ca, false, "critical,keyEncipherment");
    Made sig = make("Test RA sig", ca, false, "critical,digitalSignature");
    auto t = scep_trust(bundle({ca, &sig, &enc}), fp(ca->cert.get()), "http://ca");
    ASSERT_TRUE(t) << t.error().message;
    EXPECT_EQ(X509_cmp(t->recipient.get(), enc.cert.get()), 0);
    EXPECT_FALSE(among(t->signers, enc.cert.get()));
    EXPECT_TRUE(among(t->signers, sig.cert.get()));
}

TEST_F(ScepTrustTest, AForgedRaWithTheCasNameAndKeyIdStopsEverything)
{
    // Subject and issuer are the CA's name, the AKI is the CA's key id (the
    // extension is taken from the CA certificate), the signature is the
    // attacker's.
    PKeyPtr attacker = new_key();
    Made forged = make("ignored", ca, false, "critical,digitalSignature,keyEncipherment", -60, 86400, attacker.get(),
                       X509_get_subject_name(ca->cert.get()));
    ASSERT_EQ(X509_check_issued(ca->cert.get(), forged.cert.get()), X509_V_OK); // names and AKI fit
    auto t = scep_trust(bundle({ca, &forged}), fp(ca->cert.get()), "http://ca");
    ASSERT_FALSE(t);
    EXPECT_NE(t.error().message.find("does not verify against the pinned CA"), std::string::npos)
        << t.error().message;
    EXPECT_NE(t.error().message.find("nothing was sent"), std::string::npos) << t.error().message;
}

TEST_F(ScepTrustTest, AnRaOfAnotherCaOrExpiredIsRefused)
{
    Made other_ca = make("Other CA", nullptr, true, "critical,keyCertSign");
    Made foreign = make("Foreign RA", &other_ca, false, "critical,keyEncipherment");
    auto t = scep_trust(bundle({ca, &foreign}), fp(ca->cert.get()), "http://ca");
    ASSERT_FALSE(t);
    Made expired = make("Old RA", ca, false, "critical,keyEncipherment", -10 * 86400, -86400);
    t = scep_trust(bundle({ca, &expired}), fp(ca->cert.get()), "http://ca");
    ASSERT_FALSE(t);
    EXPECT_NE(t.error().message.find("expired"), std::string::npos) << t.error().message;
    // A CA certificate that is not the pinned one is never used, so it
    // stops nothing.
    t = scep_trust(bundle({ca, &other_ca}), fp(ca->cert.get()), "http://ca");
    ASSERT_TRUE(t) << t.error().message;
    EXPECT_EQ(t->signers.size(), 1u);
}

TEST_F(ScepTrustTest, APinnedIntermediateIsTheOnlyAnchor)
{
    Made root = make("Root CA", nullptr, true, "critical,keyCertSign");
    Made inter = make("Issuing CA", &root, true, "critical,keyCertSign,digitalSignature");
    Made ra = make("Issuing RA", &inter, false, "critical,keyEncipherment,digitalSignature");
    auto t = scep_trust(bundle({&ra, &inter, &root}), fp(inter.cert.get()), "http://ca");
    ASSERT_TRUE(t) << t.error().message;
    EXPECT_EQ(X509_cmp(t->recipient.get(), ra.cert.get()), 0);
    Made issued = make("Alice", &inter, false, "critical,digitalSignature");
    EXPECT_EQ(why(check_chain(issued.cert.get(), inter.cert.get())), "");
    EXPECT_NE(why(check_chain(issued.cert.get(), root.cert.get())), ""); // the intermediate is not given
    EXPECT_NE(why(check_chain(inter.cert.get(), ca->cert.get())), "");
}

TEST_F(ScepTrustTest, AnswersVerifyOnlyWithTrustedSigners)
{
    Made enc = make("Test RA enc", ca, false, "critical,keyEncipherment");
    auto t = scep_trust(bundle({ca, &enc}), fp(ca->cert.get()), "http://ca");
    ASSERT_TRUE(t) << t.error().message;

    PKCS7* by_ca = signed_by(ca->cert.get(), ca->key.get(), "cert rep");
    auto ok = verify_signed(by_ca, t->signers);
    ASSERT_TRUE(ok) << ok.error().message;
    EXPECT_EQ(std::string(ok->begin(), ok->end()), "cert rep");
    PKCS7_free(by_ca);

    // The encryption-only RA is verified, but may not sign.
    PKCS7* by_enc = signed_by(enc.cert.get(), enc.key.get(), "cert rep");
    EXPECT_FALSE(verify_signed(by_enc, t->signers));
    PKCS7_free(by_enc);

    // A forged CA certificate (same name and serial, another key), carried
    // in the message itself: the message's certificates are not looked at.
    PKeyPtr attacker = new_key();
    Made fake_ca = make("ignored", nullptr, true, "critical,keyCertSign,digitalSignature", -60, 86400, nullptr,
                        X509_get_subject_name(ca->cert.get()));
    X509_set_serialNumber(fake_ca.cert.get(), X509_get_serialNumber(ca->cert.get()));
    X509_sign(fake_ca.cert.get(), fake_ca.key.get(), EVP_sha256());
    PKCS7* by_fake = signed_by(fake_ca.cert.get(), fake_ca.key.get(), "cert rep");
    EXPECT_FALSE(verify_signed(by_fake, t->signers));
    PKCS7_free(by_fake);
}

TEST_F(ScepTrustTest, ACaCertificatePosingAsRaIsNeverUsed)
{
    // The forged "RA" says CA:TRUE (and may sign certificates): taken for
    // another CA certificate, it is skipped, so it neither receives the
    // request nor signs answers.
    PKeyPtr attacker = new_key();
    Made forged = make("ignored", ca, true, "critical,keyCertSign,digitalSignature,keyEncipherment", -60, 86400,
                       attacker.get(), X509_get_subject_name(ca->cert.get()));
    auto t = scep_trust(bundle({&forged, ca}), fp(ca->cert.get()), "http://ca");
    ASSERT_TRUE(t) << t.error().message;
    EXPECT_EQ(X509_cmp(t->recipient.get(), ca->cert.get()), 0);
    EXPECT_FALSE(among(t->signers, forged.cert.get()));
    PKCS7* by_forged = signed_by(forged.cert.get(), forged.key.get(), "cert rep");
    EXPECT_FALSE(verify_signed(by_forged, t->signers));
    PKCS7_free(by_forged);
}

TEST_F(ScepTrustTest, AnRaBelowAnIntermediateOfThePinnedCaIsRefused)
{
    // Only the pinned CA issues RAs: an intermediate it certified, sent along
    // by the network, does not help build a chain.
    Made sub = make("Sub CA", ca, true, "critical,keyCertSign");
    Made ra = make("Sub RA", &sub, false, "critical,digitalSignature,keyEncipherment");
    auto t = scep_trust(bundle({ca, &sub, &ra}), fp(ca->cert.get()), "http://ca");
    ASSERT_FALSE(t);
    EXPECT_NE(t.error().message.find("does not verify against the pinned CA"), std::string::npos)
        << t.error().message;
}

TEST_F(ScepTrustTest, AProperRaCarriedOnlyInTheAnswerDoesNotSign)
{
    // Issued by the pinned CA, fit to sign, but not among GetCACert's
    // certificates: an answer it signs (and carries) is refused.
    Made listed = make("Listed RA", ca, false, "critical,keyEncipherment");
    Made other = make("Other RA", ca, false, "critical,digitalSignature");
    auto t = scep_trust(bundle({ca, &listed}), fp(ca->cert.get()), "http://ca");
    ASSERT_TRUE(t) << t.error().message;
    PKCS7* by_other = signed_by(other.cert.get(), other.key.get(), "cert rep");
    EXPECT_FALSE(verify_signed(by_other, t->signers));
    PKCS7_free(by_other);
}
