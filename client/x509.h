// X.509 with OpenSSL for ukey's tools: certificates in any of the file
// formats a CA hands out, DER/PEM encoding, and the small ASN.1 helpers the
// other client files share. Nothing here touches a Key. The rest of the
// X.509 side has a header per concern, included here for callers that use
// several: public_key.h, names.h, cert_details.h.
#pragma once

#include "client/cert_details.h"
#include "client/names.h"
#include "client/ossl.h"
#include "client/public_key.h"
#include "token/bytes.h"
#include "token/result.h"

#include <ctime>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace ukey::client {

// The client library names the core's byte helpers as its own.
using ukey::Bytes;
using ukey::colon_hex;
using ukey::from_hex;
using ukey::to_hex;

// OpenSSL's pending errors as one line (and the queue emptied); "" if none.
std::string openssl_errors();
// An error (rv CKR_OK) saying `why`, OpenSSL's queue emptied.
Error x509_error(const std::string& why);

// Every certificate in `data`: PEM (any number of CERTIFICATE and PKCS7
// blocks; other blocks are skipped), a DER certificate, or a DER PKCS#7
// bundle (.p7b/.p7c). An error (rv CKR_OK) says why nothing was found.
Result<std::vector<X509Ptr>> load_certificates(std::span<const unsigned char> data);

X509Ptr parse_der(std::span<const unsigned char> der);
Bytes to_der(X509* x);
std::string to_pem(X509* x);
Bytes to_der(X509_REQ* r);
std::string to_pem(X509_REQ* r);
Bytes name_der(const X509_NAME* n);
// The serialNumber as a DER INTEGER (what CKA_SERIAL_NUMBER holds).
Bytes serial_der(X509* x);

// notBefore / notAfter as Unix time.
std::optional<std::time_t> asn1_time(const ASN1_TIME* t);
std::optional<std::time_t> not_before(const X509* x);
std::optional<std::time_t> not_after(const X509* x);

// DER of any OpenSSL object through its i2d function ({} if it fails).
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

// A memory BIO's content.
std::string bio_text(BIO* b);
// What print(bio) writes into a fresh memory BIO ("" if none).
template <class F>
std::string printed(F print)
{
    BioPtr b(BIO_new(BIO_s_mem()));
    if (!b)
        return {};
    print(b.get());
    return bio_text(b.get());
}
// An ASN.1 string as UTF-8 ("" if it cannot be converted).
std::string utf8_text(const ASN1_STRING* s);

} // namespace ukey::client
