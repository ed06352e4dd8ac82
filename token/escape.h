// Text from outside (a Key's labels and serial, a certificate's names, a
// CA's answers, a file) made safe for a terminal or a log line, and JSON
// made safe to print (docs/security.md, "Control characters").
#pragma once

#include <string>
#include <string_view>

namespace ukey::escape {

// `s` with everything a terminal or a log reader could act on shown as an
// escape; printable UTF-8 (Chinese labels included) passes unchanged:
//   - a byte that is not part of valid UTF-8 (a GBK label, 0xff, a lone
//     0x9b):                                   \xHH   (each byte)
//   - C0 controls U+0000..U+001F (ESC, BEL, newline, tab...) and DEL:
//                                              \xHH   (\x1b, \x0a, \x7f)
//   - C1 controls U+0080..U+009F, the line and paragraph separators
//     U+2028/U+2029, and the bidi overrides and isolates U+202A..U+202E,
//     U+2066..U+2069 (text that reads differently than it is):
//                                              \uHHHH (\u009b, \u202e)
// A backslash is not escaped: the result passes through printable()
// unchanged, so escaping a value and again the line it ends up in is
// harmless. A newline is escaped too: line breaks in output are written by
// ukey itself, never taken from a value.
std::string printable(std::string_view s);

// A JSON text (valid UTF-8, as nlohmann's dump with error_handler_t::replace
// makes it) with DEL and the code points printable() shows as \uHHHH
// written as JSON escapes: the same document, but no byte of it that a
// terminal acts on. (JSON itself escapes U+0000..U+001F.)
std::string printable_json(std::string_view json);

} // namespace ukey::escape
