// Well-formed UTF-8 (Unicode's Table 3-7, RFC 3629: no overlong forms, no
// surrogates, nothing above U+10FFFF), read and written one code point at a
// time. The one decoder of the tree: escape::printable() and the TOML reader
// (token/toml_shift.*) must agree on what is a character.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace ukey::utf8 {

// The length of the well-formed sequence at s[i] (1 for ASCII) and its code
// point in `cp`; 0 if the byte there does not start one.
std::size_t decode(std::string_view s, std::size_t i, char32_t& cp);

// `cp` (a Unicode scalar value) appended as UTF-8.
void append(std::string& out, char32_t cp);

// "U+00E9": how messages name a code point.
std::string code_point_name(char32_t cp);

} // namespace ukey::utf8
