// Fuzz target: what `ukey cert write` / `ukey cert show --file` read from a
// file (client/x509.cpp): load_certificates() on PEM (CERTIFICATE and
// PKCS7 blocks), DER certificates and DER PKCS#7 bundles, then everything the
// CLI derives from each certificate before it writes it to a Key.
#include "client/certs.h"
#include "client/x509.h"

#include <openssl/err.h>
#include <openssl/x509.h>

#include <cstdint>
#include <ctime>

using namespace ukey::client;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    auto certs = load_certificates({data, size});
    if (!certs) {
        (void)certs.error().message.size();
        ERR_clear_error();
        return 0;
    }
    const std::time_t now = 1800000000; // fixed: runs must be repeatable
    for (auto& x : *certs) {
        X509* c = x.get();
        CertDetails d = cert_details(c);
        (void)d;
        validity_status(c, now);
        if (auto t = not_after(c))
            days_until(*t, now), iso8601(*t);
        not_before(c);
        to_der(c);
        to_pem(c);
        name_der(X509_get_subject_name(c));
        name_der(X509_get_issuer_name(c));
        serial_der(c);
        common_name(X509_get_subject_name(c));
        if (EVP_PKEY* k = X509_get0_pubkey(c)) {
            key_identifier(k);
            describe_key(k);
        }
        X509Ptr again = parse_der(to_der(c));
        (void)again;
    }
    ERR_clear_error();
    return 0;
}
