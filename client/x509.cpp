#include "client/x509.h"

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/pkcs7.h>
#include <openssl/x509v3.h>

#include <arpa/inet.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <cerrno>
#include <cstdio>
#include <cctype>
#include <cstring>
#include <string_view>

namespace ukey::client {

namespace {

using BioPtr = std::unique_ptr<BIO, OsslFree<BIO_free_all>>;
using BnPtr = std::unique_ptr<BIGNUM, OsslFree<BN_free>>;
using PKeyCtxPtr = std::unique_ptr<EVP_PKEY_CTX, OsslFree<EVP_PKEY_CTX_free>>;
using ParamBldPtr = std::unique_ptr<OSSL_PARAM_BLD, OsslFree<OSSL_PARAM_BLD_free>>;
using ParamPtr = std::unique_ptr<OSSL_PARAM, OsslFree<OSSL_PARAM_free>>;
using Pkcs7Ptr = std::unique_ptr<PKCS7, OsslFree<PKCS7_free>>;
using Asn1ObjPtr = std::unique_ptr<ASN1_OBJECT, OsslFree<ASN1_OBJECT_free>>;
using OctetPtr = std::unique_ptr<ASN1_OCTET_STRING, OsslFree<ASN1_OCTET_STRING_free>>;
using EcGroupPtr = std::unique_ptr<EC_GROUP, OsslFree<EC_GROUP_free>>;

Error bad(const std::string& why)
{
    ERR_clear_error();
    return Error{CKR_OK, why};
}

std::string bio_text(BIO* b)
{
    char* p = nullptr;
    long n = BIO_get_mem_data(b, &p);
    return n > 0 ? std::string(p, static_cast<std::size_t>(n)) : std::string();
}

template <class T, class F>
Bytes i2d_bytes(T* obj, F i2d)
{
    int n = i2d(obj, nullptr);
    if (n <= 0)
        return {};
    Bytes out(static_cast<std::size_t>(n));
    unsigned char* p = out.data();
    i2d(obj, &p);
    return out;
}

// The certificates of a signed PKCS#7 (a "certs-only" bundle is one).
bool add_pkcs7(PKCS7* p7, std::vector<X509Ptr>& out)
{
    STACK_OF(X509)* certs = nullptr;
    switch (OBJ_obj2nid(p7->type)) {
    case NID_pkcs7_signed:
        certs = p7->d.sign ? p7->d.sign->cert : nullptr;
        break;
    case NID_pkcs7_signedAndEnveloped:
        certs = p7->d.signed_and_enveloped ? p7->d.signed_and_enveloped->cert : nullptr;
        break;
    default:
        return false;
    }
    for (int i = 0; i < sk_X509_num(certs); ++i) {
        X509* x = sk_X509_value(certs, i);
        X509_up_ref(x);
        out.emplace_back(x, X509_free);
    }
    return true;
}

std::vector<X509Ptr> from_pem(std::span<const unsigned char> data, std::string& why)
{
    std::vector<X509Ptr> out;
    BioPtr bio(BIO_new_mem_buf(data.data(), static_cast<int>(data.size())));
    std::string skipped;
    for (int block = 1;; ++block) {
        char* name = nullptr;
        char* header = nullptr;
        unsigned char* der = nullptr;
        long len = 0;
        ERR_clear_error();
        if (PEM_read_bio(bio.get(), &name, &header, &der, &len) != 1) {
            unsigned long e = ERR_peek_last_error();
            if (ERR_GET_LIB(e) != ERR_LIB_PEM || ERR_GET_REASON(e) != PEM_R_NO_START_LINE)
                why = "PEM block " + std::to_string(block) + " is damaged (" + openssl_errors() + ")";
            ERR_clear_error();
            break;
        }
        std::string kind = name;
        const unsigned char* p = der;
        if (kind == PEM_STRING_X509 || kind == PEM_STRING_X509_OLD || kind == PEM_STRING_X509_TRUSTED) {
            X509* x = kind == PEM_STRING_X509_TRUSTED ? d2i_X509_AUX(nullptr, &p, len) : d2i_X509(nullptr, &p, len);
            if (x)
                out.emplace_back(x, X509_free);
            else
                why = "PEM block " + std::to_string(block) + " (" + kind + ") is not a valid certificate";
        } else if (kind == PEM_STRING_PKCS7 || kind == PEM_STRING_PKCS7_SIGNED) {
            Pkcs7Ptr p7(d2i_PKCS7(nullptr, &p, len));
            if (!p7 || !add_pkcs7(p7.get(), out))
                why = "PEM block " + std::to_string(block) + " (" + kind + ") is not a signed PKCS#7 bundle";
        } else {
            skipped += (skipped.empty() ? "" : ", ") + kind;
        }
        OPENSSL_free(name);
        OPENSSL_free(header);
        OPENSSL_clear_free(der, static_cast<std::size_t>(len)); // may be a private key
        if (!why.empty())
            return {};
    }
    if (out.empty() && why.empty())
        why = skipped.empty() ? "it holds no PEM block" : "it holds no certificate, only: " + skipped;
    return out;
}

std::optional<std::time_t> asn1_time(const ASN1_TIME* t)
{
    struct tm tm {};
    if (!t || ASN1_TIME_to_tm(t, &tm) != 1)
        return std::nullopt;
    return timegm(&tm);
}

std::string obj_text(const ASN1_OBJECT* o, bool prefer_name)
{
    int nid = OBJ_obj2nid(o);
    if (prefer_name && nid != NID_undef)
        return OBJ_nid2sn(nid);
    char buf[128];
    OBJ_obj2txt(buf, sizeof buf, o, 1);
    return buf;
}

std::string asn1_utf8(const ASN1_STRING* s)
{
    unsigned char* out = nullptr;
    int n = ASN1_STRING_to_UTF8(&out, s);
    if (n < 0)
        return {};
    std::string r(reinterpret_cast<char*>(out), static_cast<std::size_t>(n));
    OPENSSL_free(out);
    return r;
}

std::string general_name(const GENERAL_NAME* g)
{
    switch (g->type) {
    case GEN_DNS:
        return "DNS:" + asn1_utf8(g->d.dNSName);
    case GEN_EMAIL:
        return "email:" + asn1_utf8(g->d.rfc822Name);
    case GEN_URI:
        return "URI:" + asn1_utf8(g->d.uniformResourceIdentifier);
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
            return "UPN:" + asn1_utf8(o->value->value.utf8string);
        return "othername:" + obj_text(o->type_id, false);
    }
    default:
        return "other";
    }
}

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

} // namespace

std::string openssl_errors()
{
    std::string out;
    unsigned long e;
    while ((e = ERR_get_error()) != 0) {
        const char* reason = ERR_reason_error_string(e);
        std::string r = reason ? reason : "error " + std::to_string(ERR_GET_REASON(e));
        if (out.find(r) == std::string::npos)
            out += (out.empty() ? "" : "; ") + r;
    }
    return out;
}

Result<std::vector<X509Ptr>> load_certificates(std::span<const unsigned char> data)
{
    if (data.empty())
        return bad("the file is empty");
    std::string_view text(reinterpret_cast<const char*>(data.data()), data.size());
    if (text.find("-----BEGIN ") != std::string_view::npos) {
        std::string why;
        auto certs = from_pem(data, why);
        if (!why.empty())
            return bad(why);
        return certs;
    }
    std::vector<X509Ptr> out;
    if (X509Ptr x = parse_der(data)) {
        out.push_back(std::move(x));
        return out;
    }
    const unsigned char* p = data.data();
    Pkcs7Ptr p7(d2i_PKCS7(nullptr, &p, static_cast<long>(data.size())));
    if (p7 && add_pkcs7(p7.get(), out)) {
        ERR_clear_error();
        if (out.empty())
            return bad("the PKCS#7 bundle holds no certificate");
        return out;
    }
    return bad("it is neither PEM, nor a DER certificate, nor a DER PKCS#7 bundle");
}

X509Ptr parse_der(std::span<const unsigned char> der)
{
    const unsigned char* p = der.data();
    X509Ptr x(d2i_X509(nullptr, &p, static_cast<long>(der.size())), X509_free);
    ERR_clear_error();
    if (x && p != der.data() + der.size())
        x.reset(); // trailing bytes: not one certificate
    return x;
}

Bytes to_der(X509* x)
{
    return i2d_bytes(x, i2d_X509);
}

std::string to_pem(X509* x)
{
    BioPtr b(BIO_new(BIO_s_mem()));
    PEM_write_bio_X509(b.get(), x);
    return bio_text(b.get());
}

Bytes to_der(X509_REQ* r)
{
    return i2d_bytes(r, i2d_X509_REQ);
}

std::string to_pem(X509_REQ* r)
{
    BioPtr b(BIO_new(BIO_s_mem()));
    PEM_write_bio_X509_REQ(b.get(), r);
    return bio_text(b.get());
}

Bytes name_der(const X509_NAME* n)
{
    return i2d_bytes(n, [](const X509_NAME* n, unsigned char** p) { return i2d_X509_NAME(n, p); });
}

Bytes serial_der(X509* x)
{
    return i2d_bytes(X509_get0_serialNumber(x),
                     [](const ASN1_INTEGER* i, unsigned char** p) { return i2d_ASN1_INTEGER(i, p); });
}

// --- public keys ----------------------------------------------------------

Result<PKeyPtr> rsa_public_key(std::span<const unsigned char> modulus, std::span<const unsigned char> exponent)
{
    BnPtr n(BN_bin2bn(modulus.data(), static_cast<int>(modulus.size()), nullptr));
    BnPtr e(BN_bin2bn(exponent.data(), static_cast<int>(exponent.size()), nullptr));
    ParamBldPtr bld(OSSL_PARAM_BLD_new());
    if (!n || !e || !bld || BN_is_zero(n.get()) || !OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, n.get()) ||
        !OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, e.get()))
        return bad("the RSA public key on the Key is unusable");
    ParamPtr params(OSSL_PARAM_BLD_to_param(bld.get()));
    PKeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, "RSA", nullptr));
    EVP_PKEY* k = nullptr;
    if (!params || !ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
        EVP_PKEY_fromdata(ctx.get(), &k, EVP_PKEY_PUBLIC_KEY, params.get()) != 1)
        return bad("the RSA public key on the Key is unusable (" + openssl_errors() + ")");
    return PKeyPtr(k);
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
        return bad("the Key's EC key is on a curve ukey does not know");
    Bytes point = ec_point_bytes(ec_point, (bits + 7) / 8);
    ParamBldPtr bld(OSSL_PARAM_BLD_new());
    if (!bld || !OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, curve.c_str(), 0) ||
        !OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size()))
        return bad("the EC public key on the Key is unusable");
    ParamPtr params(OSSL_PARAM_BLD_to_param(bld.get()));
    PKeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr));
    EVP_PKEY* k = nullptr;
    if (!params || !ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
        EVP_PKEY_fromdata(ctx.get(), &k, EVP_PKEY_PUBLIC_KEY, params.get()) != 1)
        return bad("the EC public key on the Key is unusable (" + openssl_errors() + ")");
    return PKeyPtr(k);
}

Bytes key_identifier(EVP_PKEY* k)
{
    X509_PUBKEY* xp = nullptr;
    if (X509_PUBKEY_set(&xp, k) != 1) {
        ERR_clear_error();
        return {};
    }
    const unsigned char* bits = nullptr;
    int len = 0;
    Bytes out;
    if (X509_PUBKEY_get0_param(nullptr, &bits, &len, nullptr, xp) == 1) {
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int n = 0;
        if (EVP_Digest(bits, static_cast<std::size_t>(len), md, &n, EVP_sha1(), nullptr) == 1)
            out.assign(md, md + n);
    }
    X509_PUBKEY_free(xp);
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

// --- names ----------------------------------------------------------------

Result<X509NamePtr> parse_name(const std::string& text)
{
    struct Ava {
        std::string type, value;
    };
    std::vector<std::vector<Ava>> rdns;
    const bool slash = !text.empty() && text[0] == '/';
    const char sep = slash ? '/' : ',';

    // Split into AVAs, honouring backslash escapes (RFC 4514 \XX included).
    std::vector<Ava> current;
    std::string field;
    bool escaped_any = false;
    auto finish_ava = [&](bool new_rdn) -> std::optional<Error> {
        std::string f = field;
        field.clear();
        auto eq = f.find('=');
        if (eq == std::string::npos)
            return bad("'" + f + "' in the name has no '=': write it as TYPE=value, e.g. /CN=Alice/O=Example");
        Ava a{f.substr(0, eq), f.substr(eq + 1)};
        auto trim = [](std::string& s) {
            while (!s.empty() && s.front() == ' ')
                s.erase(s.begin());
            while (!s.empty() && s.back() == ' ')
                s.pop_back();
        };
        trim(a.type);
        if (!slash)
            trim(a.value);
        if (a.type.empty())
            return bad("an attribute in the name has no type: write it as TYPE=value, e.g. CN=Alice");
        current.push_back(a);
        if (new_rdn) {
            rdns.push_back(std::move(current));
            current.clear();
        }
        return std::nullopt;
    };
    std::size_t i = slash ? 1 : 0;
    if (slash && text.size() == 1)
        return bad("the name is empty: give at least /CN=...");
    for (; i <= text.size(); ++i) {
        if (i == text.size() || text[i] == sep || (!slash && text[i] == ';') || (!slash && text[i] == '+')) {
            bool plus = i < text.size() && text[i] == '+';
            if (field.empty() && !escaped_any && i == text.size() && slash)
                break; // a trailing slash
            if (auto e = finish_ava(!plus))
                return *e;
            escaped_any = false;
            continue;
        }
        if (text[i] == '\\' && i + 1 < text.size()) {
            ++i;
            auto hexval = [](char c) { return std::isxdigit(static_cast<unsigned char>(c)); };
            if (!slash && i + 1 < text.size() && hexval(text[i]) && hexval(text[i + 1])) {
                field += static_cast<char>(std::stoi(text.substr(i, 2), nullptr, 16));
                ++i;
            } else {
                field += text[i];
            }
            escaped_any = true;
            continue;
        }
        field += text[i];
    }
    if (rdns.empty())
        return bad("the name is empty: give at least CN=...");
    if (!slash)
        std::reverse(rdns.begin(), rdns.end()); // RFC 4514 lists the most specific RDN first

    X509NamePtr name(X509_NAME_new());
    for (const auto& rdn : rdns) {
        bool first = true;
        for (const auto& a : rdn) {
            if (a.value.empty())
                return bad("the name's " + a.type + " has no value");
            if (X509_NAME_add_entry_by_txt(name.get(), a.type.c_str(), MBSTRING_UTF8,
                                           reinterpret_cast<const unsigned char*>(a.value.data()),
                                           static_cast<int>(a.value.size()), -1, first ? 0 : -1) != 1) {
                bool known = OBJ_txt2nid(a.type.c_str()) != NID_undef;
                ERR_clear_error();
                if (!known)
                    return bad("'" + a.type + "' in the name is not an attribute type OpenSSL knows: use CN, O, "
                               "OU, C, ST, L, emailAddress, serialNumber or a dotted OID");
                return bad("the value '" + a.value + "' is not allowed for " + a.type +
                           (OBJ_txt2nid(a.type.c_str()) == NID_countryName
                                ? ": use a two-letter country code such as DE"
                                : ": check its length and characters"));
            }
            first = false;
        }
    }
    return name;
}

std::string name_text(const X509_NAME* n)
{
    BioPtr b(BIO_new(BIO_s_mem()));
    X509_NAME_print_ex(b.get(), n, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB);
    return bio_text(b.get());
}

std::string common_name(const X509_NAME* n)
{
    int last = -1, i = -1;
    while ((i = X509_NAME_get_index_by_NID(n, NID_commonName, i)) >= 0)
        last = i;
    if (last < 0)
        return {};
    return asn1_utf8(X509_NAME_ENTRY_get_data(X509_NAME_get_entry(n, last)));
}

// --- certificate details --------------------------------------------------

CertDetails cert_details(X509* x)
{
    CertDetails d;
    d.subject = name_text(X509_get_subject_name(x));
    d.issuer = name_text(X509_get_issuer_name(x));
    d.subject_cn = common_name(X509_get_subject_name(x));
    if (BnPtr bn{ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), nullptr)}) {
        char* h = BN_bn2hex(bn.get());
        d.serial = h;
        OPENSSL_free(h);
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
    if (auto* eku = static_cast<EXTENDED_KEY_USAGE*>(X509_get_ext_d2i(x, NID_ext_key_usage, nullptr, nullptr))) {
        for (int i = 0; i < sk_ASN1_OBJECT_num(eku); ++i)
            d.ext_key_usage.push_back(obj_text(sk_ASN1_OBJECT_value(eku, i), true));
        EXTENDED_KEY_USAGE_free(eku);
    }
    if (auto* san = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(x, NID_subject_alt_name, nullptr, nullptr))) {
        for (int i = 0; i < sk_GENERAL_NAME_num(san); ++i)
            d.subject_alt_names.push_back(general_name(sk_GENERAL_NAME_value(san, i)));
        GENERAL_NAMES_free(san);
    }
    if (auto* dps = static_cast<CRL_DIST_POINTS*>(X509_get_ext_d2i(x, NID_crl_distribution_points, nullptr, nullptr))) {
        for (int i = 0; i < sk_DIST_POINT_num(dps); ++i) {
            const DIST_POINT* dp = sk_DIST_POINT_value(dps, i);
            if (!dp->distpoint || dp->distpoint->type != 0)
                continue;
            const GENERAL_NAMES* names = dp->distpoint->name.fullname;
            for (int j = 0; j < sk_GENERAL_NAME_num(names); ++j) {
                const GENERAL_NAME* g = sk_GENERAL_NAME_value(names, j);
                std::string s = general_name(g);
                d.crl_distribution_points.push_back(g->type == GEN_URI ? s.substr(4) : s);
            }
        }
        CRL_DIST_POINTS_free(dps);
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
    auto nb = asn1_time(X509_get0_notBefore(x));
    auto na = asn1_time(X509_get0_notAfter(x));
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
        return bad(openssl_errors());
    return X509ExtPtr(e);
}

// --- files ----------------------------------------------------------------

Result<Bytes> read_file(const std::string& path)
{
    FILE* f = path == "-" ? stdin : std::fopen(path.c_str(), "rb");
    if (!f)
        return Error{CKR_OK, std::strerror(errno)};
    Bytes out;
    unsigned char buf[65536];
    std::size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) {
        out.insert(out.end(), buf, buf + n);
        if (out.size() > (64u << 20)) {
            if (f != stdin)
                std::fclose(f);
            return Error{CKR_OK, "it is larger than 64 MiB, too large for a certificate file"};
        }
    }
    bool failed = std::ferror(f);
    int err = errno;
    if (f != stdin)
        std::fclose(f);
    if (failed)
        return Error{CKR_OK, std::strerror(err)};
    return out;
}

std::string write_file(const std::string& path, std::span<const unsigned char> data)
{
    // Never through a symbolic link, never truncating in place: root
    // exporting into /tmp must not overwrite the file a planted link points
    // to. A new file in the same folder (O_EXCL), renamed over the name;
    // rename() replaces a link that appears meanwhile instead of following it.
    struct stat st;
    if (lstat(path.c_str(), &st) == 0) {
        if (S_ISLNK(st.st_mode))
            return "it is a symbolic link (ukey does not write through links: give the file's own path)";
        if (!S_ISREG(st.st_mode))
            return "it is not a regular file";
    }
    const std::filesystem::path p(path);
    if (p.filename().empty() || p.filename() == "." || p.filename() == "..")
        return "it is not a file name";
    std::string tmp = (p.parent_path() / ("." + p.filename().string() + ".XXXXXX")).string();
    int fd = mkostemp(tmp.data(), O_CLOEXEC);
    if (fd < 0)
        return std::strerror(errno);
    const mode_t mask = umask(0);
    umask(mask);
    auto fail = [&](int err) {
        close(fd);
        unlink(tmp.c_str());
        return std::string(std::strerror(err));
    };
    if (fchmod(fd, 0644 & ~mask) != 0)
        return fail(errno);
    std::size_t done = 0;
    while (done < data.size()) {
        ssize_t n = ::write(fd, data.data() + done, data.size() - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return fail(n < 0 ? errno : EIO);
        done += static_cast<std::size_t>(n);
    }
    if (fsync(fd) != 0)
        return fail(errno);
    if (close(fd) != 0) {
        int err = errno;
        unlink(tmp.c_str());
        return std::strerror(err);
    }
    if (rename(tmp.c_str(), path.c_str()) != 0) {
        int err = errno;
        unlink(tmp.c_str());
        return std::strerror(err);
    }
    return {};
}

// --- text -----------------------------------------------------------------

std::string to_hex(std::span<const unsigned char> b)
{
    static const char* digits = "0123456789abcdef";
    std::string s;
    for (unsigned char c : b) {
        s += digits[c >> 4];
        s += digits[c & 15];
    }
    return s;
}

std::optional<Bytes> from_hex(const std::string& s)
{
    std::string digits;
    for (char c : s) {
        if (c == ':' || c == ' ')
            continue;
        if (!std::isxdigit(static_cast<unsigned char>(c)))
            return std::nullopt;
        digits += c;
    }
    if (digits.size() % 2 != 0)
        return std::nullopt;
    Bytes out;
    for (std::size_t i = 0; i < digits.size(); i += 2)
        out.push_back(static_cast<unsigned char>(std::stoi(digits.substr(i, 2), nullptr, 16)));
    return out;
}

std::string colon_hex(std::span<const unsigned char> b)
{
    std::string h = to_hex(b), out;
    for (std::size_t i = 0; i < h.size(); i += 2) {
        if (i)
            out += ':';
        out += static_cast<char>(std::toupper(static_cast<unsigned char>(h[i])));
        out += static_cast<char>(std::toupper(static_cast<unsigned char>(h[i + 1])));
    }
    return out;
}

} // namespace ukey::client
