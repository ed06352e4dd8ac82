// The new key pair and the request (see enrolment.h).
#include "client/enrolment.h"

#include "client/certs.h"

#include <openssl/rand.h>
#include <openssl/x509v3.h>

namespace ukey::client {

Result<CK_OBJECT_HANDLE> private_key_with_id(const Session& s, const Bytes& id)
{
    CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
    Bytes idc = id;
    auto found = s.find({{CKA_CLASS, &cls, sizeof cls}, {CKA_ID, idc.data(), idc.size()}});
    if (!found)
        return found.error();
    if (found->empty())
        return Error{CKR_OBJECT_HANDLE_INVALID, "no private key on the Key has the id " + to_hex(id)};
    return (*found)[0];
}

Result<NewKeyPair> generate_rsa(const Session& s, CK_ULONG bits, const std::string& label)
{
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    CK_BYTE exponent[] = {0x01, 0x00, 0x01};
    std::string l = label;
    std::vector<CK_ATTRIBUTE> pub = {{CKA_TOKEN, &yes, sizeof yes},          {CKA_PRIVATE, &no, sizeof no},
                                     {CKA_VERIFY, &yes, sizeof yes},         {CKA_ENCRYPT, &yes, sizeof yes},
                                     {CKA_MODULUS_BITS, &bits, sizeof bits}, {CKA_PUBLIC_EXPONENT, exponent, sizeof exponent},
                                     {CKA_LABEL, l.data(), l.size()}};
    std::vector<CK_ATTRIBUTE> priv = {{CKA_TOKEN, &yes, sizeof yes},     {CKA_PRIVATE, &yes, sizeof yes},
                                      {CKA_SENSITIVE, &yes, sizeof yes}, {CKA_EXTRACTABLE, &no, sizeof no},
                                      {CKA_SIGN, &yes, sizeof yes},      {CKA_DECRYPT, &yes, sizeof yes},
                                      {CKA_LABEL, l.data(), l.size()}};
    CK_MECHANISM mech{CKM_RSA_PKCS_KEY_PAIR_GEN, nullptr, 0};
    CK_OBJECT_HANDLE hpub = CK_INVALID_HANDLE;
    NewKeyPair out;
    if (CK_RV rv = s.f()->C_GenerateKeyPair(s.handle(), &mech, pub.data(), pub.size(), priv.data(), priv.size(), &hpub,
                                            &out.priv);
        rv != CKR_OK)
        return ck_error(rv, "generating the new key pair");
    auto keys = read_keys(s);
    if (!keys)
        return keys.error();
    for (auto& o : *keys)
        if (o.handle == hpub)
            out.pub = std::move(o.public_key);
    if (!out.pub)
        return Error{CKR_GENERAL_ERROR, "the Key generated a key pair but its public key is unreadable"};
    out.id = key_identifier(out.pub.get());
    CK_ATTRIBUTE set{CKA_ID, out.id.data(), out.id.size()};
    for (CK_OBJECT_HANDLE h : {out.priv, hpub})
        if (CK_RV rv = s.f()->C_SetAttributeValue(s.handle(), h, &set, 1); rv != CKR_OK)
            return ck_error(rv, "setting the new key's id");
    return out;
}

Result<Bytes> make_request(const X509_NAME* subject, EVP_PKEY* pub, EVP_PKEY* key, const Secret& challenge, X509* old)
{
    X509ReqPtr req(X509_REQ_new());
    if (!req || X509_REQ_set_version(req.get(), X509_REQ_VERSION_1) != 1 ||
        X509_REQ_set_subject_name(req.get(), subject) != 1 || X509_REQ_set_pubkey(req.get(), pub) != 1)
        return x509_error("OpenSSL cannot make the request (" + openssl_errors() + ")");
    if (!challenge.empty() &&
        X509_REQ_add1_attr_by_NID(req.get(), NID_pkcs9_challengePassword, MBSTRING_UTF8, challenge.data(),
                                  static_cast<int>(challenge.size())) != 1)
        return x509_error("OpenSSL cannot add the challenge password (" + openssl_errors() + ")");
    if (old) {
        // The old certificate's alternative names go along.
        GeneralNamesPtr san(static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(old, NID_subject_alt_name, nullptr, nullptr)));
        if (san) {
            STACK_OF(X509_EXTENSION)* raw = nullptr;
            const bool ok = X509V3_add1_i2d(&raw, NID_subject_alt_name, san.get(), 0, X509V3_ADD_DEFAULT) == 1;
            ExtStack exts(raw);
            if (!ok || X509_REQ_add_extensions(req.get(), exts.get()) != 1)
                return x509_error("OpenSSL cannot copy the old certificate's alternative names (" + openssl_errors() +
                                  ")");
        }
    }
    if (X509_REQ_sign(req.get(), key, EVP_sha256()) <= 0)
        return Error{CKR_GENERAL_ERROR, "signing the request on the Key failed (" + openssl_errors() + ")"};
    return to_der(req.get());
}

Result<X509Ptr> self_signed(EVP_PKEY* pub, EVP_PKEY* key, const X509_NAME* subject)
{
    X509Ptr x(X509_new(), X509_free);
    Bytes serial(8);
    if (RAND_bytes(serial.data(), static_cast<int>(serial.size())) != 1)
        return x509_error("no random bytes for a serial number (" + openssl_errors() + ")");
    serial[0] &= 0x7f;
    BnPtr bn(BN_bin2bn(serial.data(), static_cast<int>(serial.size()), nullptr));
    bool ok = x && bn && X509_set_version(x.get(), X509_VERSION_3) &&
              BN_to_ASN1_INTEGER(bn.get(), X509_get_serialNumber(x.get())) &&
              X509_set_subject_name(x.get(), subject) && X509_set_issuer_name(x.get(), subject) &&
              X509_gmtime_adj(X509_getm_notBefore(x.get()), -300) &&
              X509_gmtime_adj(X509_getm_notAfter(x.get()), 7 * 86400) && X509_set_pubkey(x.get(), pub);
    if (!ok || X509_sign(x.get(), key, EVP_sha256()) <= 0)
        return x509_error("cannot make the temporary self-signed certificate on the Key (" + openssl_errors() + ")");
    return x;
}

} // namespace ukey::client
