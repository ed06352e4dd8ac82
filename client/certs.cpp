#include "client/certs.h"

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

std::string KeyOnKey::type_name() const
{
    switch (type) {
    case CKK_RSA:
        return "rsa";
    case CKK_EC:
        return "ec";
    case CKK_EC_EDWARDS:
        return "ed25519";
    default:
        return "other";
    }
}

namespace {

int modulus_bits(const std::vector<unsigned char>& m)
{
    std::size_t i = 0;
    while (i < m.size() && m[i] == 0)
        ++i;
    if (i == m.size())
        return 0;
    int bits = static_cast<int>((m.size() - i) * 8);
    for (unsigned char top = m[i]; !(top & 0x80); top <<= 1)
        --bits;
    return bits;
}

// An attribute that may be missing or unreadable: absent either way.
std::optional<std::vector<unsigned char>> maybe(const Session& s, CK_OBJECT_HANDLE h, CK_ATTRIBUTE_TYPE type)
{
    auto v = s.attribute(h, type);
    if (!v || !v->has_value())
        return std::nullopt;
    return std::move(**v);
}

} // namespace

Result<std::vector<KeyOnKey>> read_keys(const Session& s)
{
    std::vector<KeyOnKey> out;
    for (CK_OBJECT_CLASS cls : {CKO_PRIVATE_KEY, CKO_PUBLIC_KEY}) {
        auto handles = s.find({{CKA_CLASS, &cls, sizeof cls}});
        if (!handles)
            return handles.error();
        for (CK_OBJECT_HANDLE h : *handles) {
            KeyOnKey k;
            k.handle = h;
            k.cls = cls;
            if (auto t = s.ulong_attribute(h, CKA_KEY_TYPE))
                k.type = *t;
            if (auto id = maybe(s, h, CKA_ID))
                k.id = std::move(*id);
            if (auto label = s.string_attribute(h, CKA_LABEL))
                k.label = *label;
            if (k.type == CKK_RSA) {
                auto n = maybe(s, h, CKA_MODULUS);
                auto e = maybe(s, h, CKA_PUBLIC_EXPONENT);
                if (n)
                    k.bits = modulus_bits(*n);
                else if (auto mb = s.ulong_attribute(h, CKA_MODULUS_BITS))
                    k.bits = static_cast<int>(*mb);
                if (n && e)
                    if (auto pk = rsa_public_key(*n, *e))
                        k.public_key = std::move(*pk);
            } else if (k.type == CKK_EC) {
                if (auto params = maybe(s, h, CKA_EC_PARAMS)) {
                    std::string curve = curve_of_params(*params);
                    k.bits = curve.empty() ? 0 : curve_bits(curve);
                    k.curve = curve.empty() ? "unknown" : curve_display(curve);
                    if (auto point = maybe(s, h, CKA_EC_POINT))
                        if (auto pk = ec_public_key(*params, *point))
                            k.public_key = std::move(*pk);
                }
            }
            out.push_back(std::move(k));
        }
    }
    return out;
}

const KeyOnKey* key_matching(const std::vector<KeyOnKey>& keys, EVP_PKEY* pub)
{
    const KeyOnKey* found = nullptr;
    for (const auto& k : keys) {
        if (!k.public_key || !same_public_key(k.public_key.get(), pub))
            continue;
        if (k.is_private())
            return &k;
        if (!found)
            found = &k;
    }
    if (found && !found->id.empty()) {
        // A public key matched: its private half (same id), if visible, is the better answer.
        for (const auto& k : keys)
            if (k.is_private() && k.id == found->id && k.type == found->type)
                return &k;
    }
    return found;
}

} // namespace ukey::client
