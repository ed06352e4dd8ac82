#include "client/signer.h"

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/objects.h>

#include <algorithm>

namespace ukey::client {

namespace {

const EVP_MD* md_of(Hash h)
{
    switch (h) {
    case Hash::sha384:
        return EVP_sha384();
    case Hash::sha512:
        return EVP_sha512();
    default:
        return EVP_sha256();
    }
}

int md_nid(Hash h)
{
    switch (h) {
    case Hash::sha384:
        return NID_sha384;
    case Hash::sha512:
        return NID_sha512;
    default:
        return NID_sha256;
    }
}

Bytes digest(Hash h, std::span<const unsigned char> data)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (EVP_Digest(data.data(), data.size(), md, &n, md_of(h), nullptr) != 1)
        return {};
    return Bytes(md, md + n);
}

// DER DigestInfo { AlgorithmIdentifier { hash, NULL }, OCTET STRING hash }.
Bytes digest_info(Hash h, const Bytes& hash)
{
    OsslPtr<X509_SIG, X509_SIG_free> sig(X509_SIG_new());
    if (!sig)
        return {};
    X509_ALGOR* alg = nullptr;
    ASN1_OCTET_STRING* octets = nullptr;
    X509_SIG_getm(sig.get(), &alg, &octets);
    X509_ALGOR_set0(alg, OBJ_nid2obj(md_nid(h)), V_ASN1_NULL, nullptr);
    ASN1_OCTET_STRING_set(octets, hash.data(), static_cast<int>(hash.size()));
    return i2d_bytes(sig.get(), i2d_X509_SIG);
}

Bytes algorithm_der(int nid, bool null_params)
{
    X509AlgorPtr alg(X509_ALGOR_new());
    if (!alg)
        return {};
    X509_ALGOR_set0(alg.get(), OBJ_nid2obj(nid), null_params ? V_ASN1_NULL : V_ASN1_UNDEF, nullptr);
    return i2d_bytes(alg.get(), i2d_X509_ALGOR);
}

bool has_mechanism(const Session& s, CK_MECHANISM_TYPE m)
{
    CK_MECHANISM_INFO info{};
    return s.f()->C_GetMechanismInfo(s.slot(), m, &info) == CKR_OK && (info.flags & CKF_SIGN);
}

// The Key's r||s as a DER ECDSA-Sig-Value.
Result<Bytes> ecdsa_der(const Bytes& raw)
{
    if (raw.empty() || raw.size() % 2 != 0)
        return Error{CKR_GENERAL_ERROR, "the Key returned an ECDSA signature of odd length " +
                                            std::to_string(raw.size()) + ": its driver is broken"};
    const int half = static_cast<int>(raw.size() / 2);
    BnPtr r(BN_bin2bn(raw.data(), half, nullptr));
    BnPtr s(BN_bin2bn(raw.data() + half, half, nullptr));
    OsslPtr<ECDSA_SIG, ECDSA_SIG_free> sig(ECDSA_SIG_new());
    if (!r || !s || !sig || ECDSA_SIG_set0(sig.get(), r.get(), s.get()) != 1)
        return Error{CKR_HOST_MEMORY, "encoding the ECDSA signature failed"};
    (void)r.release(); // the signature owns them now
    (void)s.release();
    return i2d_bytes(sig.get(), i2d_ECDSA_SIG);
}

} // namespace

namespace {

// The two-call length protocol of C_Sign and C_Decrypt.
template <class Run>
Result<Bytes> two_calls(Run run, const std::string& doing)
{
    CK_ULONG len = 0;
    if (CK_RV rv = run(nullptr, &len); rv != CKR_OK)
        return ck_error(rv, doing);
    Bytes out(len);
    if (CK_RV rv = run(out.data(), &len); rv != CKR_OK)
        return ck_error(rv, doing);
    out.resize(len);
    return out;
}

} // namespace

Result<Bytes> sign_raw(const Session& s, CK_OBJECT_HANDLE key, CK_MECHANISM_TYPE type,
                       std::span<const unsigned char> data, bool always_auth, Secret* pin)
{
    if (always_auth && !pin)
        return Error{CKR_USER_NOT_LOGGED_IN, "this key asks for the PIN again at every signature, and none was given"};
    CK_MECHANISM mech{type, nullptr, 0};
    if (CK_RV rv = s.f()->C_SignInit(s.handle(), &mech, key); rv != CKR_OK)
        return ck_error(rv, "starting to sign on the Key");
    if (always_auth) {
        if (CK_RV rv = s.f()->C_Login(s.handle(), CKU_CONTEXT_SPECIFIC, pin->data(), pin->size()); rv != CKR_OK)
            return ck_error(rv, "giving the PIN for this signature");
    }
    auto* in = const_cast<CK_BYTE_PTR>(data.data());
    return two_calls([&](CK_BYTE_PTR out, CK_ULONG* len) { return s.f()->C_Sign(s.handle(), in, data.size(), out, len); },
                     "signing on the Key");
}

Result<Bytes> decrypt_raw(const Session& s, CK_OBJECT_HANDLE key, CK_MECHANISM_TYPE type,
                          std::span<const unsigned char> data)
{
    CK_MECHANISM mech{type, nullptr, 0};
    if (CK_RV rv = s.f()->C_DecryptInit(s.handle(), &mech, key); rv != CKR_OK)
        return ck_error(rv, "starting to decrypt on the Key");
    auto* in = const_cast<CK_BYTE_PTR>(data.data());
    return two_calls(
        [&](CK_BYTE_PTR out, CK_ULONG* len) { return s.f()->C_Decrypt(s.handle(), in, data.size(), out, len); },
        "decrypting on the Key");
}

std::optional<Hash> hash_from_name(const std::string& name)
{
    if (name == "sha256")
        return Hash::sha256;
    if (name == "sha384")
        return Hash::sha384;
    if (name == "sha512")
        return Hash::sha512;
    return std::nullopt;
}

const char* hash_name(Hash h)
{
    static constexpr const char* names[] = {"sha256", "sha384", "sha512"}; // Hash's order
    return names[static_cast<int>(h)];
}

X509AlgorPtr Signature::algorithm_identifier() const
{
    const unsigned char* p = algorithm.data();
    return X509AlgorPtr(d2i_X509_ALGOR(nullptr, &p, static_cast<long>(algorithm.size())));
}

Result<Signature> sign(const Session& s, CK_OBJECT_HANDLE key, std::span<const unsigned char> tbs, Hash hash,
                       Secret* context_pin)
{
    auto type = s.ulong_attribute(key, CKA_KEY_TYPE);
    if (!type)
        return type.error();
    bool always_auth = false;
    if (auto aa = s.attribute(key, CKA_ALWAYS_AUTHENTICATE); aa && aa->has_value() && !(*aa)->empty())
        always_auth = (**aa)[0] != CK_FALSE;

    Signature sig;
    if (*type == CKK_RSA) {
        static const CK_MECHANISM_TYPE combined[] = {CKM_SHA256_RSA_PKCS, CKM_SHA384_RSA_PKCS, CKM_SHA512_RSA_PKCS};
        static const int sig_nids[] = {NID_sha256WithRSAEncryption, NID_sha384WithRSAEncryption,
                                       NID_sha512WithRSAEncryption};
        const auto i = static_cast<std::size_t>(hash);
        sig.algorithm = algorithm_der(sig_nids[i], true);
        if (has_mechanism(s, combined[i])) {
            sig.mechanism = combined[i];
            auto v = sign_raw(s, key, combined[i], tbs, always_auth, context_pin);
            if (!v)
                return v.error();
            sig.value = std::move(*v);
        } else {
            if (!has_mechanism(s, CKM_RSA_PKCS))
                return Error{CKR_MECHANISM_INVALID, std::string("the Key can sign neither with RSA-PKCS#1 nor with ") +
                                                        hash_name(hash) + "-RSA: it cannot make this signature"};
            sig.mechanism = CKM_RSA_PKCS;
            Bytes di = digest_info(hash, digest(hash, tbs));
            auto v = sign_raw(s, key, CKM_RSA_PKCS, di, always_auth, context_pin);
            if (!v)
                return v.error();
            sig.value = std::move(*v);
        }
    } else if (*type == CKK_EC) {
        static const int sig_nids[] = {NID_ecdsa_with_SHA256, NID_ecdsa_with_SHA384, NID_ecdsa_with_SHA512};
        sig.algorithm = algorithm_der(sig_nids[static_cast<std::size_t>(hash)], false);
        sig.mechanism = CKM_ECDSA;
        Bytes h = digest(hash, tbs);
        auto raw = sign_raw(s, key, CKM_ECDSA, h, always_auth, context_pin);
        if (!raw)
            return raw.error();
        auto der = ecdsa_der(*raw);
        if (!der)
            return der.error();
        sig.value = std::move(*der);
    } else {
        return Error{CKR_KEY_TYPE_INCONSISTENT,
                     "ukey signs certificates and requests with RSA and EC keys only; this key is of another type"};
    }
    ERR_clear_error();
    return sig;
}

} // namespace ukey::client
