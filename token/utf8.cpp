#include "token/utf8.h"

#include <cstdio>

namespace ukey::utf8 {
namespace {

// The lead bytes, the sequence's length and the range of its second byte
// (the others are 80..BF).
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

} // namespace

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

void append(std::string& out, char32_t cp)
{
    auto put = [&](unsigned v) { out += static_cast<char>(v); };
    if (cp < 0x80) {
        put(cp);
    } else if (cp < 0x800) {
        put(0xc0 | (cp >> 6));
        put(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
        put(0xe0 | (cp >> 12));
        put(0x80 | ((cp >> 6) & 0x3f));
        put(0x80 | (cp & 0x3f));
    } else {
        put(0xf0 | (cp >> 18));
        put(0x80 | ((cp >> 12) & 0x3f));
        put(0x80 | ((cp >> 6) & 0x3f));
        put(0x80 | (cp & 0x3f));
    }
}

std::string code_point_name(char32_t cp)
{
    char buf[16];
    std::snprintf(buf, sizeof buf, "U+%04X", static_cast<unsigned>(cp));
    return buf;
}

} // namespace ukey::utf8
