#include "token/escape.h"

#include <cstdint>
#include <cstdio>

namespace ukey::escape {
namespace {

// The length of the valid UTF-8 sequence at s[i] (RFC 3629: no overlong
// forms, no surrogates, nothing above U+10FFFF) and its code point; 0 if the
// byte there does not start one.
std::size_t decode(std::string_view s, std::size_t i, char32_t& cp)
{
    auto at = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
    const unsigned char b = at(i);
    if (b < 0x80) {
        cp = b;
        return 1;
    }
    std::size_t n;
    unsigned char lo = 0x80, hi = 0xbf; // the range of the second byte
    if (b >= 0xc2 && b <= 0xdf) {
        n = 2;
        cp = b & 0x1f;
    } else if (b >= 0xe0 && b <= 0xef) {
        n = 3;
        cp = b & 0x0f;
        if (b == 0xe0)
            lo = 0xa0;
        if (b == 0xed)
            hi = 0x9f;
    } else if (b >= 0xf0 && b <= 0xf4) {
        n = 4;
        cp = b & 0x07;
        if (b == 0xf0)
            lo = 0x90;
        if (b == 0xf4)
            hi = 0x8f;
    } else {
        return 0;
    }
    if (i + n > s.size())
        return 0;
    for (std::size_t k = 1; k < n; ++k) {
        const unsigned char c = at(i + k);
        if (c < (k == 1 ? lo : 0x80) || c > (k == 1 ? hi : 0xbf))
            return 0;
        cp = (cp << 6) | (c & 0x3f);
    }
    return n;
}

// Code points above ASCII that printable() escapes.
bool hidden(char32_t cp)
{
    return (cp >= 0x80 && cp <= 0x9f) || cp == 0x2028 || cp == 0x2029 || (cp >= 0x202a && cp <= 0x202e) ||
           (cp >= 0x2066 && cp <= 0x2069);
}

void append_hex(std::string& out, const char* format, unsigned value)
{
    char buf[8];
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
        const std::size_t n = decode(s, i, cp);
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
        std::size_t n = decode(json, i, cp);
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
