#include "token/bytes.h"

#include <algorithm>

namespace ukey {

namespace {

constexpr char lower[] = "0123456789abcdef";
constexpr char upper[] = "0123456789ABCDEF";
constexpr char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

// A digit's value: its place in the alphabet, or -1.
int value_in(std::string_view alphabet, char c)
{
    const auto at = alphabet.find(c);
    return at == std::string_view::npos ? -1 : static_cast<int>(at);
}

} // namespace

int hex_value(char c)
{
    const int v = value_in(lower, c);
    return v >= 0 ? v : value_in(upper, c);
}

namespace {

int b64_value(char c)
{
    return value_in(b64, c);
}

} // namespace

std::string to_hex(std::span<const unsigned char> b)
{
    std::string s;
    s.reserve(2 * b.size());
    for (unsigned char c : b) {
        s += lower[c >> 4];
        s += lower[c & 15];
    }
    return s;
}

std::string colon_hex(std::span<const unsigned char> b)
{
    std::string s;
    for (std::size_t i = 0; i < b.size(); ++i) {
        if (i)
            s += ':';
        s += upper[b[i] >> 4];
        s += upper[b[i] & 15];
    }
    return s;
}

std::optional<Bytes> from_hex(std::string_view s)
{
    Bytes out;
    int high = -1;
    for (char c : s) {
        if (c == ':' || c == ' ')
            continue;
        int v = hex_value(c);
        if (v < 0)
            return std::nullopt;
        if (high < 0) {
            high = v;
        } else {
            out.push_back(static_cast<unsigned char>(high << 4 | v));
            high = -1;
        }
    }
    if (high >= 0)
        return std::nullopt;
    return out;
}

std::string to_base64(std::span<const unsigned char> b)
{
    std::string out;
    out.reserve((b.size() + 2) / 3 * 4);
    for (std::size_t i = 0; i < b.size(); i += 3) {
        const std::size_t n = std::min<std::size_t>(3, b.size() - i);
        unsigned v = unsigned(b[i]) << 16 | (n > 1 ? unsigned(b[i + 1]) << 8 : 0) | (n > 2 ? b[i + 2] : 0);
        out += b64[v >> 18 & 63];
        out += b64[v >> 12 & 63];
        out += n > 1 ? b64[v >> 6 & 63] : '=';
        out += n > 2 ? b64[v & 63] : '=';
    }
    return out;
}

std::optional<Bytes> from_base64(std::string_view s)
{
    if (s.size() % 4 != 0)
        return std::nullopt;
    Bytes out;
    out.reserve(s.size() / 4 * 3);
    for (std::size_t i = 0; i < s.size(); i += 4) {
        const bool last = i + 4 == s.size();
        const std::size_t pad = last ? (s[i + 3] == '=') + (s[i + 2] == '=' && s[i + 3] == '=') : 0;
        unsigned v = 0;
        for (std::size_t k = 0; k < 4 - pad; ++k) {
            int d = b64_value(s[i + k]);
            if (d < 0)
                return std::nullopt;
            v |= unsigned(d) << (18 - 6 * k);
        }
        out.push_back(static_cast<unsigned char>(v >> 16));
        if (pad < 2)
            out.push_back(static_cast<unsigned char>(v >> 8 & 255));
        if (pad < 1)
            out.push_back(static_cast<unsigned char>(v & 255));
    }
    return out;
}

} // namespace ukey
