// Public keys: rebuilt from PKCS#11 attributes, described, compared (see
// public_key.h).
#include "client/public_key.h"

#include "client/x509.h"

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/param_build.h>

namespace ukey::client {

namespace {

using ParamBldPtr = OsslPtr<OSSL_PARAM_BLD, OSSL_PARAM_BLD_free>;
using ParamPtr = OsslPtr<OSSL_PARAM, OSSL_PARAM_free>;
using Asn1ObjPtr = OsslPtr<ASN1_OBJECT, ASN1_OBJECT_free>;
using OctetPtr = OsslPtr<ASN1_OCTET_STRING, ASN1_OCTET_STRING_free>;
using EcGroupPtr = OsslPtr<EC_GROUP, EC_GROUP_free>;

// The point inside CKA_EC_POINT: a DER OCTET STRING by the standard, raw on
// some tokens. `field` is the curve's field size in bytes.
Bytes ec_point_bytes(std::span<const unsigned char> attr, int field)
{
    auto plausible = [field](const unsigned char* p, std::size_t n) {
        return n > 0 && ((p[0] == 4 && n == 1 + 2 * std::size_t(field)) ||
                         ((p[0] == 2 || p[0] == 3) && n == 1 + std::size_t(field)));
    };
    const unsigned char* p = attr.data();
    OctetPtr os(d2i_ASN1_OCTET_STRING(nullptr, &p, static_cast<long>(attr.size())));
    ERR_clear_error();
    if (os && p == attr.data() + attr.size() && plausible(os->data, std::size_t(os->length)))
        return Bytes(os->data, os->data + os->length);
    return Bytes(attr.begin(), attr.end());
}

// A public key of `type` ("RSA", "EC") from the parameters in `bld`.
Result<PKeyPtr> from_params(const char* type, OSSL_PARAM_BLD* bld)
{
    ParamPtr params(OSSL_PARAM_BLD_to_param(bld));
    PKeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr));
    EVP_PKEY* k = nullptr;
    if (!params || !ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
        EVP_PKEY_fromdata(ctx.get(), &k, EVP_PKEY_PUBLIC_KEY, params.get()) != 1)
        return x509_error(std::string("the ") + type + " public key on the Key is unusable (" + openssl_errors() + ")");
    return PKeyPtr(k);
}

} // namespace

Result<PKeyPtr> rsa_public_key(std::span<const unsigned char> modulus, std::span<const unsigned char> exponent)
{
    BnPtr n(BN_bin2bn(modulus.data(), static_cast<int>(modulus.size()), nullptr));
    BnPtr e(BN_bin2bn(exponent.data(), static_cast<int>(exponent.size()), nullptr));
    ParamBldPtr bld(OSSL_PARAM_BLD_new());
    if (!n || !e || !bld || BN_is_zero(n.get()) || !OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, n.get()) ||
        !OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, e.get()))
        return x509_error("the RSA public key on the Key is unusable");
    return from_params("RSA", bld.get());
}

std::string curve_of_params(std::span<const unsigned char> ec_params)
{
    const unsigned char* p = ec_params.data();
    Asn1ObjPtr oid(d2i_ASN1_OBJECT(nullptr, &p, static_cast<long>(ec_params.size())));
    ERR_clear_error();
    if (!oid)
        return {};
    int nid = OBJ_obj2nid(oid.get());
    return nid == NID_undef ? std::string() : OBJ_nid2sn(nid);
}

Bytes ec_params_for(int nid)
{
    return i2d_bytes(OBJ_nid2obj(nid), [](const ASN1_OBJECT* o, unsigned char** p) { return i2d_ASN1_OBJECT(o, p); });
}

int curve_bits(const std::string& short_name)
{
    EcGroupPtr g(EC_GROUP_new_by_curve_name(OBJ_sn2nid(short_name.c_str())));
    ERR_clear_error();
    return g ? EC_GROUP_get_degree(g.get()) : 0;
}

std::string curve_display(const std::string& short_name)
{
    const char* nist = EC_curve_nid2nist(OBJ_sn2nid(short_name.c_str()));
    return nist ? nist : short_name;
}

Result<PKeyPtr> ec_public_key(std::span<const unsigned char> ec_params, std::span<const unsigned char> ec_point)
{
    std::string curve = curve_of_params(ec_params);
    int bits = curve.empty() ? 0 : curve_bits(curve);
    if (bits == 0)
        return x509_error("the Key's EC key is on a curve ukey does not know");
    Bytes point = ec_point_bytes(ec_point, (bits + 7) / 8);
    ParamBldPtr bld(OSSL_PARAM_BLD_new());
    if (!bld || !OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, curve.c_str(), 0) ||
        !OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size()))
        return x509_error("the EC public key on the Key is unusable");
    return from_params("EC", bld.get());
}

Bytes key_identifier(EVP_PKEY* k)
{
    X509_PUBKEY* raw = nullptr;
    if (X509_PUBKEY_set(&raw, k) != 1) {
        ERR_clear_error();
        return {};
    }
    X509PubkeyPtr xp(raw);
    const unsigned char* bits = nullptr;
    int len = 0;
    Bytes out;
    if (X509_PUBKEY_get0_param(nullptr, &bits, &len, nullptr, xp.get()) == 1) {
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int n = 0;
        if (EVP_Digest(bits, static_cast<std::size_t>(len), md, &n, EVP_sha1(), nullptr) == 1)
            out.assign(md, md + n);
    }
    return out;
}

bool same_public_key(EVP_PKEY* a, EVP_PKEY* b)
{
    bool same = a && b && EVP_PKEY_eq(a, b) == 1;
    ERR_clear_error();
    return same;
}

KeyDescription describe_key(EVP_PKEY* k)
{
    KeyDescription d;
    if (!k)
        return d;
    d.bits = EVP_PKEY_get_bits(k);
    switch (EVP_PKEY_get_base_id(k)) {
    case EVP_PKEY_RSA:
        d.type = "rsa";
        break;
    case EVP_PKEY_RSA_PSS:
        d.type = "rsa-pss";
        break;
    case EVP_PKEY_EC: {
        d.type = "ec";
        char group[80] = {0};
        std::size_t len = 0;
        if (EVP_PKEY_get_group_name(k, group, sizeof group, &len) == 1)
            d.curve = curve_display(group);
        break;
    }
    case EVP_PKEY_ED25519:
        d.type = "ed25519";
        break;
    case EVP_PKEY_ED448:
        d.type = "ed448";
        break;
    case EVP_PKEY_DSA:
        d.type = "dsa";
        break;
    default:
        d.type = "other";
    }
    return d;
}

} // namespace ukey::client
