#include "certs.h"

#include <openssl/asn1.h>

#include <cmath>

namespace ukey::client {

X509Ptr CertOnKey::parse() const
{
    const unsigned char* p = der.data();
    return X509Ptr(d2i_X509(nullptr, &p, static_cast<long>(der.size())), X509_free);
}

Result<std::vector<CertOnKey>> read_certificates(const Session& s)
{
    CK_OBJECT_CLASS cls = CKO_CERTIFICATE;
    CK_CERTIFICATE_TYPE type = CKC_X_509;
    auto handles = s.find({{CKA_CLASS, &cls, sizeof cls}, {CKA_CERTIFICATE_TYPE, &type, sizeof type}});
    if (!handles)
        return handles.error();
    std::vector<CertOnKey> out;
    for (CK_OBJECT_HANDLE h : *handles) {
        CertOnKey c;
        c.handle = h;
        auto value = s.attribute(h, CKA_VALUE);
        if (!value)
            return value.error();
        if (!value->has_value())
            continue;
        c.der = std::move(**value);
        if (auto id = s.attribute(h, CKA_ID); id && id->has_value())
            c.id = std::move(**id);
        if (auto label = s.string_attribute(h, CKA_LABEL))
            c.label = *label;
        if (auto cat = s.ulong_attribute(h, CKA_CERTIFICATE_CATEGORY))
            c.category = *cat;
        out.push_back(std::move(c));
    }
    return out;
}

namespace {
std::optional<std::time_t> to_time(const ASN1_TIME* t)
{
    struct tm tm {};
    if (!t || ASN1_TIME_to_tm(t, &tm) != 1)
        return std::nullopt;
    return timegm(&tm);
}
} // namespace

std::optional<std::time_t> not_before(const X509* x)
{
    return to_time(X509_get0_notBefore(x));
}

std::optional<std::time_t> not_after(const X509* x)
{
    return to_time(X509_get0_notAfter(x));
}

long days_until(std::time_t t, std::time_t now)
{
    return static_cast<long>(std::floor(std::difftime(t, now) / 86400.0));
}

std::string iso8601(std::time_t t)
{
    struct tm tm {};
    gmtime_r(&t, &tm);
    char buf[32];
    strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

} // namespace ukey::client
