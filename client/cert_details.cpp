// What a certificate says, in words: names, validity, extensions,
// fingerprints (see cert_details.h).
#include "client/cert_details.h"

#include "client/names.h"
#include "client/x509.h"

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include <arpa/inet.h>

#include <cctype>

namespace ukey::client {

namespace {

std::string obj_text(const ASN1_OBJECT* o, bool prefer_name)
{
    int nid = OBJ_obj2nid(o);
    if (prefer_name && nid != NID_undef)
        return OBJ_nid2sn(nid);
    char buf[128];
    OBJ_obj2txt(buf, sizeof buf, o, 1);
    return buf;
}

std::string general_name(const GENERAL_NAME* g)
{
    switch (g->type) {
    case GEN_DNS:
        return "DNS:" + utf8_text(g->d.dNSName);
    case GEN_EMAIL:
        return "email:" + utf8_text(g->d.rfc822Name);
    case GEN_URI:
        return "URI:" + utf8_text(g->d.uniformResourceIdentifier);
    case GEN_IPADD: {
        char buf[INET6_ADDRSTRLEN] = "?";
        const ASN1_OCTET_STRING* ip = g->d.iPAddress;
        if (ip->length == 4)
            inet_ntop(AF_INET, ip->data, buf, sizeof buf);
        else if (ip->length == 16)
            inet_ntop(AF_INET6, ip->data, buf, sizeof buf);
        return std::string("IP:") + buf;
    }
    case GEN_DIRNAME:
        return "DirName:" + name_text(g->d.directoryName);
    case GEN_RID:
        return "RID:" + obj_text(g->d.registeredID, false);
    case GEN_OTHERNAME: {
        const OTHERNAME* o = g->d.otherName;
        if (OBJ_obj2nid(o->type_id) == NID_ms_upn && o->value && o->value->type == V_ASN1_UTF8STRING)
            return "UPN:" + utf8_text(o->value->value.utf8string);
        return "othername:" + obj_text(o->type_id, false);
    }
    default:
        return "other";
    }
}

// An extension of `x`, decoded (null if absent or unreadable).
template <class T, auto Free>
OsslPtr<T, Free> extension(X509* x, int nid)
{
    return OsslPtr<T, Free>(static_cast<T*>(X509_get_ext_d2i(x, nid, nullptr, nullptr)));
}

} // namespace

CertDetails cert_details(X509* x)
{
    CertDetails d;
    d.subject = name_text(X509_get_subject_name(x));
    d.issuer = name_text(X509_get_issuer_name(x));
    d.subject_cn = common_name(X509_get_subject_name(x));
    if (BnPtr bn{ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), nullptr)}) {
        OsslMem<char> h(BN_bn2hex(bn.get()));
        d.serial = h ? h.get() : "";
        for (auto& c : d.serial)
            c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    d.not_before = asn1_time(X509_get0_notBefore(x));
    d.not_after = asn1_time(X509_get0_notAfter(x));

    // X509_get_key_usage and friends also fill the extension cache.
    const uint32_t ku = X509_get_key_usage(x);
    if (ku != UINT32_MAX) {
        static const std::pair<uint32_t, const char*> names[] = {
            {KU_DIGITAL_SIGNATURE, "digitalSignature"}, {KU_NON_REPUDIATION, "nonRepudiation"},
            {KU_KEY_ENCIPHERMENT, "keyEncipherment"},   {KU_DATA_ENCIPHERMENT, "dataEncipherment"},
            {KU_KEY_AGREEMENT, "keyAgreement"},         {KU_KEY_CERT_SIGN, "keyCertSign"},
            {KU_CRL_SIGN, "cRLSign"},                   {KU_ENCIPHER_ONLY, "encipherOnly"},
            {KU_DECIPHER_ONLY, "decipherOnly"}};
        for (const auto& [bit, name] : names)
            if (ku & bit)
                d.key_usage.push_back(name);
    }
    if (auto eku = extension<EXTENDED_KEY_USAGE, EXTENDED_KEY_USAGE_free>(x, NID_ext_key_usage)) {
        for (int i = 0; i < sk_ASN1_OBJECT_num(eku.get()); ++i)
            d.ext_key_usage.push_back(obj_text(sk_ASN1_OBJECT_value(eku.get(), i), true));
    }
    if (auto san = extension<GENERAL_NAMES, GENERAL_NAMES_free>(x, NID_subject_alt_name)) {
        for (int i = 0; i < sk_GENERAL_NAME_num(san.get()); ++i)
            d.subject_alt_names.push_back(general_name(sk_GENERAL_NAME_value(san.get(), i)));
    }
    if (auto dps = extension<CRL_DIST_POINTS, CRL_DIST_POINTS_free>(x, NID_crl_distribution_points)) {
        for (int i = 0; i < sk_DIST_POINT_num(dps.get()); ++i) {
            const DIST_POINT* dp = sk_DIST_POINT_value(dps.get(), i);
            if (!dp->distpoint || dp->distpoint->type != 0)
                continue;
            const GENERAL_NAMES* names = dp->distpoint->name.fullname;
            for (int j = 0; j < sk_GENERAL_NAME_num(names); ++j) {
                const GENERAL_NAME* g = sk_GENERAL_NAME_value(names, j);
                std::string s = general_name(g);
                d.crl_distribution_points.push_back(g->type == GEN_URI ? s.substr(4) : s);
            }
        }
    }
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (X509_digest(x, EVP_sha256(), md, &n) == 1)
        d.sha256.assign(md, md + n);
    if (X509_digest(x, EVP_sha1(), md, &n) == 1)
        d.sha1.assign(md, md + n);
    d.signature_algorithm = OBJ_nid2ln(X509_get_signature_nid(x));
    EVP_PKEY* pk = X509_get0_pubkey(x);
    d.public_key = describe_key(pk);
    if (pk)
        d.key_id = key_identifier(pk);
    if (const ASN1_OCTET_STRING* ski = X509_get0_subject_key_id(x))
        d.subject_key_id.assign(ski->data, ski->data + ski->length);
    d.is_ca = X509_check_ca(x) != 0;
    d.self_signed = X509_self_signed(x, 0) == 1;
    ERR_clear_error();
    return d;
}

std::string validity_status(X509* x, std::time_t now)
{
    auto nb = not_before(x);
    auto na = not_after(x);
    if (nb && now < *nb)
        return "not_yet_valid";
    if (na && now > *na)
        return "expired";
    return "valid";
}

// --- requests -------------------------------------------------------------

Result<X509ExtPtr> make_extension(X509_REQ* req, int nid, const std::string& value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, nullptr, nullptr, req, nullptr, 0);
    X509V3_set_ctx_nodb(&ctx);
    ERR_clear_error();
    X509_EXTENSION* e = X509V3_EXT_nconf_nid(nullptr, &ctx, nid, value.c_str());
    if (!e)
        return x509_error(openssl_errors());
    return X509ExtPtr(e);
}

} // namespace ukey::client
