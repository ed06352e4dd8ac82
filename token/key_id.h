// What names a Key: its backend and its token's manufacturer, model and
// serial. The same identity gives its slot ID (slot_id.h) and names its PIN
// state (pin_store.h); never its position in a slot list.
#pragma once

#include <ukey/pkcs11.h>

#include <string>

namespace ukey {

struct KeyId {
    std::string backend, manufacturer, model, serial;

    // The identity as one string: "token" and the four parts, NUL-separated.
    std::string identity() const;
    bool operator==(const KeyId&) const = default;
};

KeyId key_id(const std::string& backend, const CK_TOKEN_INFO& t);

} // namespace ukey
