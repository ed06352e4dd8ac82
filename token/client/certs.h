// Certificates on a Key, read without logging in (they are public objects),
// parsed with OpenSSL.
#pragma once

#include "module.h"

#include <openssl/x509.h>

#include <ctime>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace ukey::client {

using X509Ptr = std::unique_ptr<X509, decltype(&X509_free)>;

struct CertOnKey {
    CK_OBJECT_HANDLE handle = CK_INVALID_HANDLE;
    std::vector<unsigned char> id; // CKA_ID
    std::string label;             // CKA_LABEL
    std::vector<unsigned char> der;
    CK_ULONG category = 0; // CKA_CERTIFICATE_CATEGORY: 1 token user, 2 authority, 3 other

    X509Ptr parse() const;
};

// Every X.509 certificate object on the Key.
Result<std::vector<CertOnKey>> read_certificates(const Session& s);

// notBefore / notAfter as Unix time.
std::optional<std::time_t> not_before(const X509* x);
std::optional<std::time_t> not_after(const X509* x);
// Whole days from `now` to `t` (negative when past).
long days_until(std::time_t t, std::time_t now);
// "2026-11-21T09:30:00Z"
std::string iso8601(std::time_t t);

} // namespace ukey::client
