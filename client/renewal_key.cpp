// RenewalKey over a PKCS#11 session (see renewal.h).
#include "client/renewal.h"

namespace ukey::client {

Result<std::vector<CertOnKey>> SessionKey::certificates()
{
    return read_certificates(s_);
}

Result<std::vector<KeyOnKey>> SessionKey::keys()
{
    return read_keys(s_);
}

Result<std::vector<CK_OBJECT_HANDLE>> SessionKey::labelled(const std::string& label)
{
    return s_.find({{CKA_LABEL, const_cast<char*>(label.data()), label.size()}});
}

Result<CK_OBJECT_HANDLE> SessionKey::write_certificate(X509* x, const Bytes& id, const std::string& label,
                                                       CK_ULONG category)
{
    CK_OBJECT_CLASS cls = CKO_CERTIFICATE;
    CK_CERTIFICATE_TYPE type = CKC_X_509;
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    Bytes der = to_der(x), subject = name_der(X509_get_subject_name(x)), issuer = name_der(X509_get_issuer_name(x)),
          serial = serial_der(x), idc = id;
    std::vector<CK_ATTRIBUTE> t = {{CKA_CLASS, &cls, sizeof cls},
                                   {CKA_CERTIFICATE_TYPE, &type, sizeof type},
                                   {CKA_TOKEN, &yes, sizeof yes},
                                   {CKA_PRIVATE, &no, sizeof no},
                                   {CKA_LABEL, const_cast<char*>(label.data()), label.size()},
                                   {CKA_VALUE, der.data(), der.size()},
                                   {CKA_SUBJECT, subject.data(), subject.size()},
                                   {CKA_ISSUER, issuer.data(), issuer.size()},
                                   {CKA_SERIAL_NUMBER, serial.data(), serial.size()},
                                   {CKA_CERTIFICATE_CATEGORY, &category, sizeof category}};
    if (!idc.empty())
        t.push_back({CKA_ID, idc.data(), idc.size()});
    CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
    if (CK_RV rv = s_.f()->C_CreateObject(s_.handle(), t.data(), t.size(), &h); rv != CKR_OK)
        return ck_error(rv, "writing the certificate to the Key");
    return h;
}

Result<void> SessionKey::relabel(CK_OBJECT_HANDLE h, const std::string& label)
{
    CK_ATTRIBUTE a{CKA_LABEL, const_cast<char*>(label.data()), label.size()};
    if (CK_RV rv = s_.f()->C_SetAttributeValue(s_.handle(), h, &a, 1); rv != CKR_OK)
        return ck_error(rv, "relabelling an object on the Key");
    return {};
}

Result<void> SessionKey::destroy(CK_OBJECT_HANDLE h, const std::string& what)
{
    if (CK_RV rv = s_.f()->C_DestroyObject(s_.handle(), h); rv != CKR_OK)
        return ck_error(rv, "deleting " + what);
    return {};
}

} // namespace ukey::client
