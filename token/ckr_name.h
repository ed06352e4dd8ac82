// CKR_* codes by name, for the module's own log lines and errors (the
// sentences for people are the tools' business: client/messages.h).
#pragma once

#include <ukey/pkcs11.h>

#include <string>

namespace ukey {

// "CKR_PIN_INCORRECT", or "CKR_0x..." for a code PKCS#11 v2.40 does not name
// (a vendor's own, say).
std::string ckr_name(CK_RV rv);

} // namespace ukey
