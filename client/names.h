// Distinguished names: parsed from what people type, shown as text.
#pragma once

#include "client/ossl.h"
#include "token/result.h"

#include <string>

namespace ukey::client {

// A distinguished name from the OpenSSL slash form "/CN=Alice/O=Example"
// (in order, `\` escapes) or the RFC 4514 / 2253 comma form
// "CN=Alice,O=Example" (most specific first). The error says what is wrong.
Result<X509NamePtr> parse_name(const std::string& text);
// RFC 2253 form, UTF-8 kept: "CN=Alice,O=Example".
std::string name_text(const X509_NAME* n);
// The (last) commonName, else "".
std::string common_name(const X509_NAME* n);

} // namespace ukey::client
