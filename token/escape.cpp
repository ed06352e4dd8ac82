#include "token/escape.h"

#include "token/utf8.h"

#include <cstdint>
#include <cstdio>

namespace ukey::escape {
namespace {

// Code points above ASCII that printable() escapes.
bool hidden(char32_t cp)
{
    return (cp >= 0x80 && cp <= 0x9f) || cp == 0x2028 || cp == 0x2029 || (cp >= 0x202a && cp <= 0x202e) ||
           (cp >= 0x2066 && cp <= 0x2069);
}

void append_hex(std::string& out, const char* format, unsigned value)
{
    char buf[16]; // "\\u" and up to 8 hex digits: code points above U+FFFF too
    std::snprintf(buf, sizeof buf, format, value);
    out += buf;
}

} // namespace

std::string printable(std::string_view s)
{
    std::string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size();) {
        char32_t cp = 0;
        const std::size_t n = utf8::decode(s, i, cp);
        if (n == 0) {
            append_hex(out, "\\x%02x", static_cast<unsigned char>(s[i]));
            ++i;
            continue;
        }
        if (cp < 0x20 || cp == 0x7f)
            append_hex(out, "\\x%02x", static_cast<unsigned>(cp));
        else if (hidden(cp))
            append_hex(out, "\\u%04x", static_cast<unsigned>(cp));
        else
            out.append(s.substr(i, n));
        i += n;
    }
    return out;
}

std::string printable_json(std::string_view json)
{
    std::string out;
    out.reserve(json.size());
    for (std::size_t i = 0; i < json.size();) {
        char32_t cp = 0;
        std::size_t n = utf8::decode(json, i, cp);
        if (n == 0) { // not from a dump with error_handler_t::replace
            out += "\\ufffd";
            ++i;
            continue;
        }
        if (cp == 0x7f || hidden(cp)) {
            // Only inside a string can such a code point be: its \u escape
            // is the same string.
            append_hex(out, "\\u%04x", static_cast<unsigned>(cp));
            i += n;
            continue;
        }
        out.append(json.substr(i, n));
        i += n;
    }
    return out;
}

} // namespace ukey::escape
