#include "ukeytest/keys.h"

#include "ukeytest/module.h"
#include "ukeytest/rv.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/param_build.h>

#include <stdexcept>

namespace ukeytest {
namespace {

// DER OID 1.2.840.10045.3.1.7 (prime256v1 / P-256).
const uint8_t kP256Oid[] = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};

CK_BBOOL kTrue = CK_TRUE;
CK_BBOOL kFalse = CK_FALSE;

std::vector<uint8_t> sha256(const std::vector<uint8_t>& data)
{
    std::vector<uint8_t> md(32);
    unsigned int len = 0;
    if (!EVP_Digest(data.data(), data.size(), md.data(), &len, EVP_sha256(), nullptr) ||
        len != 32)
        throw std::runtime_error("EVP_Digest(SHA-256) failed");
    return md;
}

// CKA_EC_POINT is a DER OCTET STRING holding the uncompressed P-256 point
// (04 41 04 X Y); accept the raw point (04 X Y) some modules return too.
std::vector<uint8_t> unwrap_p256_point(const std::vector<uint8_t>& v)
{
    if (v.size() == 67 && v[0] == 0x04 && v[1] == 0x41 && v[2] == 0x04)
        return {v.begin() + 2, v.end()};
    if (v.size() == 65 && v[0] == 0x04)
        return v;
    throw std::runtime_error("CKA_EC_POINT is not an uncompressed P-256 point");
}

// unique_ptr deleter calling OpenSSL's free function F.
template <auto F>
struct Free {
    template <class T>
    void operator()(T* p) const
    {
        F(p);
    }
};
using BnFree = Free<BN_free>;
using BldFree = Free<OSSL_PARAM_BLD_free>;
using ParamFree = Free<OSSL_PARAM_free>;
using CtxFree = Free<EVP_PKEY_CTX_free>;
using MdCtxFree = Free<EVP_MD_CTX_free>;
using SigFree = Free<ECDSA_SIG_free>;

EvpPkey pkey_from_params(const char* type, OSSL_PARAM_BLD* bld)
{
    std::unique_ptr<OSSL_PARAM, ParamFree> params(OSSL_PARAM_BLD_to_param(bld));
    std::unique_ptr<EVP_PKEY_CTX, CtxFree> ctx(EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr));
    EVP_PKEY* pkey = nullptr;
    if (!params || !ctx || EVP_PKEY_fromdata_init(ctx.get()) <= 0 ||
        EVP_PKEY_fromdata(ctx.get(), &pkey, EVP_PKEY_PUBLIC_KEY, params.get()) <= 0)
        throw std::runtime_error(std::string("EVP_PKEY_fromdata(") + type + ") failed");
    return EvpPkey(pkey);
}

}  // namespace

const char* to_string(KeyKind kind)
{
    return kind == KeyKind::Rsa2048 ? "RSA-2048" : "EC-P256";
}

KeyPair generate_key_pair(CK_FUNCTION_LIST* fl, CK_SESSION_HANDLE session, KeyKind kind,
                          const std::string& label, bool on_token)
{
    std::string lbl = label;
    CK_BBOOL token = on_token ? CK_TRUE : CK_FALSE;
    CK_ULONG bits = 2048;
    uint8_t exponent[] = {0x01, 0x00, 0x01};
    std::vector<uint8_t> ec_params(std::begin(kP256Oid), std::end(kP256Oid));

    std::vector<CK_ATTRIBUTE> pub = {
        {CKA_TOKEN, &token, sizeof token},     {CKA_PRIVATE, &kFalse, sizeof kFalse},
        {CKA_VERIFY, &kTrue, sizeof kTrue},    {CKA_LABEL, lbl.data(), lbl.size()},
        {CKA_ID, lbl.data(), lbl.size()},
    };
    std::vector<CK_ATTRIBUTE> priv = {
        {CKA_TOKEN, &token, sizeof token},   {CKA_PRIVATE, &kTrue, sizeof kTrue},
        {CKA_SENSITIVE, &kTrue, sizeof kTrue}, {CKA_SIGN, &kTrue, sizeof kTrue},
        {CKA_LABEL, lbl.data(), lbl.size()}, {CKA_ID, lbl.data(), lbl.size()},
    };
    CK_MECHANISM mech{};
    if (kind == KeyKind::Rsa2048) {
        mech.mechanism = CKM_RSA_PKCS_KEY_PAIR_GEN;
        pub.push_back({CKA_MODULUS_BITS, &bits, sizeof bits});
        pub.push_back({CKA_PUBLIC_EXPONENT, exponent, sizeof exponent});
        pub.push_back({CKA_ENCRYPT, &kTrue, sizeof kTrue});
        priv.push_back({CKA_DECRYPT, &kTrue, sizeof kTrue});
    } else {
        mech.mechanism = CKM_EC_KEY_PAIR_GEN;
        pub.push_back({CKA_EC_PARAMS, ec_params.data(), ec_params.size()});
        priv.push_back({CKA_DERIVE, &kTrue, sizeof kTrue});
    }
    KeyPair kp{kind};
    check(fl->C_GenerateKeyPair(session, &mech, pub.data(), pub.size(), priv.data(), priv.size(),
                                &kp.pub, &kp.priv),
          std::string("C_GenerateKeyPair(") + to_string(kind) + ")");
    return kp;
}

KeyPair find_key_pair(CK_FUNCTION_LIST* fl, CK_SESSION_HANDLE session, KeyKind kind,
                      const std::string& label)
{
    KeyPair kp{kind};
    kp.pub = find_by_label(fl, session, CKO_PUBLIC_KEY, label);
    kp.priv = find_by_label(fl, session, CKO_PRIVATE_KEY, label);
    return kp;
}

CK_MECHANISM_TYPE sign_mechanism(KeyKind kind)
{
    return kind == KeyKind::Rsa2048 ? CKM_SHA256_RSA_PKCS : CKM_ECDSA;
}

std::vector<uint8_t> sign(CK_FUNCTION_LIST* fl, CK_SESSION_HANDLE session, const KeyPair& key,
                          const std::vector<uint8_t>& data)
{
    std::vector<uint8_t> input = key.kind == KeyKind::EcP256 ? sha256(data) : data;
    CK_MECHANISM mech{sign_mechanism(key.kind), nullptr, 0};
    check(fl->C_SignInit(session, &mech, key.priv), "C_SignInit");
    CK_ULONG len = 0;
    check(fl->C_Sign(session, input.data(), input.size(), nullptr, &len), "C_Sign(length)");
    std::vector<uint8_t> sig(len);
    check(fl->C_Sign(session, input.data(), input.size(), sig.data(), &len), "C_Sign");
    sig.resize(len);
    return sig;
}

EvpPkey public_key(CK_FUNCTION_LIST* fl, CK_SESSION_HANDLE session, const KeyPair& key)
{
    std::unique_ptr<OSSL_PARAM_BLD, BldFree> bld(OSSL_PARAM_BLD_new());
    if (!bld)
        throw std::runtime_error("OSSL_PARAM_BLD_new failed");
    if (key.kind == KeyKind::Rsa2048) {
        auto n_bytes = get_attribute(fl, session, key.pub, CKA_MODULUS);
        auto e_bytes = get_attribute(fl, session, key.pub, CKA_PUBLIC_EXPONENT);
        std::unique_ptr<BIGNUM, BnFree> n(BN_bin2bn(n_bytes.data(), n_bytes.size(), nullptr));
        std::unique_ptr<BIGNUM, BnFree> e(BN_bin2bn(e_bytes.data(), e_bytes.size(), nullptr));
        if (!n || !e || !OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, n.get()) ||
            !OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, e.get()))
            throw std::runtime_error("building RSA public key failed");
        return pkey_from_params("RSA", bld.get());
    }
    auto params = get_attribute(fl, session, key.pub, CKA_EC_PARAMS);
    if (params != std::vector<uint8_t>(std::begin(kP256Oid), std::end(kP256Oid)))
        throw std::runtime_error("CKA_EC_PARAMS is not the P-256 OID");
    auto point = unwrap_p256_point(get_attribute(fl, session, key.pub, CKA_EC_POINT));
    if (!OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) ||
        !OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(),
                                          point.size()))
        throw std::runtime_error("building EC public key failed");
    return pkey_from_params("EC", bld.get());
}

bool verify(EVP_PKEY* pub, KeyKind kind, const std::vector<uint8_t>& data,
            const std::vector<uint8_t>& signature)
{
    std::vector<uint8_t> sig = signature;
    if (kind == KeyKind::EcP256) {
        // PKCS#11 ECDSA signatures are r || s; OpenSSL wants DER.
        if (signature.size() != 64)
            return false;
        std::unique_ptr<ECDSA_SIG, SigFree> es(ECDSA_SIG_new());
        BIGNUM* r = BN_bin2bn(signature.data(), 32, nullptr);
        BIGNUM* s = BN_bin2bn(signature.data() + 32, 32, nullptr);
        if (!es || !r || !s || !ECDSA_SIG_set0(es.get(), r, s)) {
            BN_free(r);
            BN_free(s);
            return false;
        }
        unsigned char* der = nullptr;
        int len = i2d_ECDSA_SIG(es.get(), &der);
        if (len <= 0)
            return false;
        sig.assign(der, der + len);
        OPENSSL_free(der);
    }
    std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
    return ctx && EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr, pub) == 1 &&
           EVP_DigestVerify(ctx.get(), sig.data(), sig.size(), data.data(), data.size()) == 1;
}

namespace {

// A 32-byte secret key, extractable and not sensitive (tests compare
// values), with `usage` (CKA_ENCRYPT..., each CK_TRUE) and `more` attributes.
CK_OBJECT_HANDLE generate_secret_key(CK_FUNCTION_LIST* fl, CK_SESSION_HANDLE session, const std::string& label,
                                     bool on_token, CK_MECHANISM_TYPE mechanism,
                                     std::initializer_list<CK_ATTRIBUTE_TYPE> usage,
                                     std::vector<CK_ATTRIBUTE> more, const char* what)
{
    std::string lbl = label;
    CK_BBOOL token = on_token ? CK_TRUE : CK_FALSE;
    CK_ULONG len = 32;
    std::vector<CK_ATTRIBUTE> t = {
        {CKA_TOKEN, &token, sizeof token},
        {CKA_LABEL, lbl.data(), lbl.size()},
        {CKA_VALUE_LEN, &len, sizeof len},
        {CKA_EXTRACTABLE, &kTrue, sizeof kTrue},
        {CKA_SENSITIVE, &kFalse, sizeof kFalse},
    };
    for (CK_ATTRIBUTE_TYPE u : usage)
        t.push_back({u, &kTrue, sizeof kTrue});
    t.insert(t.end(), more.begin(), more.end());
    CK_MECHANISM mech{mechanism, nullptr, 0};
    CK_OBJECT_HANDLE key = CK_INVALID_HANDLE;
    check(fl->C_GenerateKey(session, &mech, t.data(), t.size(), &key), what);
    return key;
}

}  // namespace

CK_OBJECT_HANDLE generate_aes_key(CK_FUNCTION_LIST* fl, CK_SESSION_HANDLE session,
                                  const std::string& label, bool on_token)
{
    return generate_secret_key(fl, session, label, on_token, CKM_AES_KEY_GEN,
                               {CKA_ENCRYPT, CKA_DECRYPT, CKA_WRAP, CKA_UNWRAP, CKA_DERIVE}, {},
                               "C_GenerateKey(AES)");
}

CK_OBJECT_HANDLE generate_hmac_key(CK_FUNCTION_LIST* fl, CK_SESSION_HANDLE session,
                                   const std::string& label, bool on_token)
{
    CK_KEY_TYPE type = CKK_GENERIC_SECRET;
    return generate_secret_key(fl, session, label, on_token, CKM_GENERIC_SECRET_KEY_GEN,
                               {CKA_SIGN, CKA_VERIFY}, {{CKA_KEY_TYPE, &type, sizeof type}},
                               "C_GenerateKey(HMAC)");
}

}  // namespace ukeytest
