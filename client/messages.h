// CKR_* codes in plain words: the name for logs and JSON, and a sentence
// saying the cause and what to do, for people.
#pragma once

#include <ukey/pkcs11.h>

#include <string>

namespace ukey::client {

// "CKR_PIN_INCORRECT", or "CKR_0x..." for a code we do not know.
std::string ckr_name(CK_RV rv);

// One sentence: cause, then the fix. Never mentions a PIN's value.
std::string explain(CK_RV rv);

} // namespace ukey::client
