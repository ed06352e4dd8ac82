#include "token/escape.h"

#include <cstdint>
#include <cstdio>

namespace ukey::escape {
namespace {

// Well-formed UTF-8 (Unicode's Table 3-7, RFC 3629: no overlong forms, no
// surrogates, nothing above U+10FFFF): the lead bytes, the sequence's length
// and the range of its second byte (the others are 80..BF).
struct Form {
    unsigned char first, last;
    std::size_t n;
    unsigned char lo, hi;
};
constexpr Form forms[] = {
    {0xc2, 0xdf, 2, 0x80, 0xbf}, {0xe0, 0xe0, 3, 0xa0, 0xbf}, {0xe1, 0xec, 3, 0x80, 0xbf},
    {0xed, 0xed, 3, 0x80, 0x9f}, {0xee, 0xef, 3, 0x80, 0xbf}, {0xf0, 0xf0, 4, 0x90, 0xbf},
    {0xf1, 0xf3, 4, 0x80, 0xbf}, {0xf4, 0xf4, 4, 0x80, 0x8f},
};

// The length of the valid UTF-8 sequence at s[i] and its code point; 0 if
// the byte there does not start one.
std::size_t decode(std::string_view s, std::size_t i, char32_t& cp)
{
    auto at = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
    const unsigned char b = at(i);
    if (b < 0x80) {
        cp = b;
        return 1;
    }
    const Form* f = nullptr;
    for (const Form& row : forms)
        if (b >= row.first && b <= row.last)
            f = &row;
    if (!f || i + f->n > s.size())
        return 0;
    cp = b & (0x7f >> f->n);
    for (std::size_t k = 1; k < f->n; ++k) {
        const unsigned char c = at(i + k);
        if (c < (k == 1 ? f->lo : 0x80) || c > (k == 1 ? f->hi : 0xbf))
            return 0;
        cp = (cp << 6) | (c & 0x3f);
    }
    return f->n;
}

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
