// What a new PIN must look like, and how a Key's counts show in its token
// flags (docs/pin-policy.md).
#pragma once

#include "token/pin_store.h"

#include <ukey/pkcs11.h>

namespace ukey {

struct PinRules {
    bool reject_trivial = true; // all one character, straight runs (123456, 654321), the old PIN
    unsigned min_length = 0;    // 0: the token's ulMinPinLen
};

// CKR_OK, CKR_PIN_LEN_RANGE or CKR_PIN_INVALID. `old` may be NULL.
CK_RV check_new_pin(const CK_UTF8CHAR* pin, CK_ULONG len, const CK_TOKEN_INFO& token, const PinRules& rules,
                    const CK_UTF8CHAR* old = nullptr, CK_ULONG old_len = 0);

// Replaces the backend's PIN count flags with ukey's. A damaged record shows
// as locked.
void apply_pin_flags(CK_TOKEN_INFO& t, const Result<PinCounts>& counts);

} // namespace ukey
