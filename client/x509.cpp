// Certificates in and out: the file formats a CA hands out, DER and PEM,
// the small ASN.1 helpers the other client files share (see x509.h).
#include "client/x509.h"

#include <openssl/err.h>
#include <openssl/pem.h>

#include <string_view>

namespace ukey::client {

namespace {

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
        out.push_back(x509_ref(x));
    }
    return true;
}

Result<std::vector<X509Ptr>> from_pem(std::span<const unsigned char> data)
{
    std::vector<X509Ptr> out;
    BioPtr bio(BIO_new_mem_buf(data.data(), static_cast<int>(data.size())));
    std::string skipped;
    for (int block = 1;; ++block) {
        char* name_raw = nullptr;
        char* header_raw = nullptr;
        unsigned char* der_raw = nullptr;
        long len = 0;
        ERR_clear_error();
        const int got = PEM_read_bio(bio.get(), &name_raw, &header_raw, &der_raw, &len);
        OsslMem<char> name(name_raw), header(header_raw);
        // The block may be a private key: wiped when freed.
        auto wipe = [len](unsigned char* p) { OPENSSL_clear_free(p, static_cast<std::size_t>(len)); };
        std::unique_ptr<unsigned char, decltype(wipe)> der(der_raw, wipe);
        if (got != 1) {
            unsigned long e = ERR_peek_last_error();
            if (ERR_GET_LIB(e) != ERR_LIB_PEM || ERR_GET_REASON(e) != PEM_R_NO_START_LINE)
                return x509_error("PEM block " + std::to_string(block) + " is damaged (" + openssl_errors() + ")");
            ERR_clear_error();
            break;
        }
        std::string kind = name.get();
        const unsigned char* p = der.get();
        if (kind == PEM_STRING_X509 || kind == PEM_STRING_X509_OLD || kind == PEM_STRING_X509_TRUSTED) {
            X509Ptr x(kind == PEM_STRING_X509_TRUSTED ? d2i_X509_AUX(nullptr, &p, len) : d2i_X509(nullptr, &p, len),
                      X509_free);
            if (!x)
                return x509_error("PEM block " + std::to_string(block) + " (" + kind + ") is not a valid certificate");
            out.push_back(std::move(x));
        } else if (kind == PEM_STRING_PKCS7 || kind == PEM_STRING_PKCS7_SIGNED) {
            PKCS7Ptr p7(d2i_PKCS7(nullptr, &p, len));
            if (!p7 || !add_pkcs7(p7.get(), out))
                return x509_error("PEM block " + std::to_string(block) + " (" + kind + ") is not a signed PKCS#7 bundle");
        } else {
            skipped += (skipped.empty() ? "" : ", ") + kind;
        }
    }
    if (out.empty())
        return x509_error(skipped.empty() ? "it holds no PEM block" : "it holds no certificate, only: " + skipped);
    return out;
}

} // namespace

Error x509_error(const std::string& why)
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

std::string utf8_text(const ASN1_STRING* s)
{
    unsigned char* raw = nullptr;
    int n = ASN1_STRING_to_UTF8(&raw, s);
    if (n < 0)
        return {};
    OsslMem<unsigned char> out(raw);
    return std::string(reinterpret_cast<char*>(out.get()), static_cast<std::size_t>(n));
}

std::optional<std::time_t> asn1_time(const ASN1_TIME* t)
{
    struct tm tm {};
    if (!t || ASN1_TIME_to_tm(t, &tm) != 1)
        return std::nullopt;
    return timegm(&tm);
}

std::optional<std::time_t> not_before(const X509* x)
{
    return asn1_time(X509_get0_notBefore(x));
}

std::optional<std::time_t> not_after(const X509* x)
{
    return asn1_time(X509_get0_notAfter(x));
}

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
        return x509_error("the file is empty");
    std::string_view text(reinterpret_cast<const char*>(data.data()), data.size());
    if (text.find("-----BEGIN ") != std::string_view::npos)
        return from_pem(data);
    std::vector<X509Ptr> out;
    if (X509Ptr x = parse_der(data)) {
        out.push_back(std::move(x));
        return out;
    }
    const unsigned char* p = data.data();
    PKCS7Ptr p7(d2i_PKCS7(nullptr, &p, static_cast<long>(data.size())));
    if (p7 && add_pkcs7(p7.get(), out)) {
        ERR_clear_error();
        if (out.empty())
            return x509_error("the PKCS#7 bundle holds no certificate");
        return out;
    }
    return x509_error("it is neither PEM, nor a DER certificate, nor a DER PKCS#7 bundle");
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
    return printed([&](BIO* b) { PEM_write_bio_X509(b, x); });
}

Bytes to_der(X509_REQ* r)
{
    return i2d_bytes(r, i2d_X509_REQ);
}

std::string to_pem(X509_REQ* r)
{
    return printed([&](BIO* b) { PEM_write_bio_X509_REQ(b, r); });
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

} // namespace ukey::client
