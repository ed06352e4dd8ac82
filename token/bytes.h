// Bytes and their text forms: hex (key IDs, fingerprints, file names) and
// base64 (DER inside JSON state files and SCEP's GET form). The one
// encoder and decoder of each for the module, the client library and the
// tools.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace ukey {

using Bytes = std::vector<unsigned char>;

// Lowercase hex.
std::string to_hex(std::span<const unsigned char> b);
// Uppercase hex with a colon between bytes, as OpenSSL prints fingerprints.
std::string colon_hex(std::span<const unsigned char> b);
// One hex digit's value (either case), or -1.
int hex_value(char c);
// Hex in either case; spaces and colons are skipped (a pasted
// fingerprint). nullopt for anything else or an odd digit count.
std::optional<Bytes> from_hex(std::string_view s);

// Standard base64 with padding, no line breaks.
std::string to_base64(std::span<const unsigned char> b);
// The inverse; nullopt if `s` is not padded base64 (whitespace is not
// allowed: every caller stores it without).
std::optional<Bytes> from_base64(std::string_view s);

// A text's bytes, for the byte APIs (DER and PEM parsers take both).
inline std::span<const unsigned char> as_bytes(std::string_view s)
{
    return {reinterpret_cast<const unsigned char*>(s.data()), s.size()};
}

} // namespace ukey
