// The blank-padded text fields of PKCS#11 structs (CK_INFO, CK_TOKEN_INFO,
// UKEY_SLOT_BACKEND): written one way. Reading them back without the
// padding is client::text (client/module.h).
#pragma once

#include <ukey/pkcs11.h>

#include <algorithm>
#include <cstring>
#include <string_view>

namespace ukey {

// `text`, cut to `size` bytes, then blanks: never NUL-terminated.
inline void pad_field(CK_UTF8CHAR* field, std::size_t size, std::string_view text)
{
    std::memset(field, ' ', size);
    std::memcpy(field, text.data(), std::min(size, text.size()));
}

} // namespace ukey
