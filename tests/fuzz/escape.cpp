// Fuzz target: the escaping of untrusted text (token/escape.cpp), with its
// promises as the oracle (escape.h): printable() leaves no byte a terminal
// acts on (C0, DEL, C1, U+2028/9, bidi overrides and isolates), gives valid
// UTF-8, is idempotent, and leaves clean text alone; printable_json() of a
// dump of the input as a JSON string is the same JSON document and holds no
// such byte either. Anything else is a bug: abort().
#include "token/escape.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace {

// Independent of escape.cpp: the code points of valid UTF-8 (RFC 3629), or
// false at the first byte that is not.
template <class F>
bool each_code_point(std::string_view s, F f)
{
    for (std::size_t i = 0; i < s.size();) {
        const auto b = static_cast<unsigned char>(s[i]);
        std::size_t n = b < 0x80 ? 1 : (b & 0xe0) == 0xc0 ? 2 : (b & 0xf0) == 0xe0 ? 3 : (b & 0xf8) == 0xf0 ? 4 : 0;
        if (n == 0 || i + n > s.size())
            return false;
        char32_t cp = n == 1 ? b : n == 2 ? b & 0x1f : n == 3 ? b & 0x0f : b & 0x07;
        for (std::size_t k = 1; k < n; ++k) {
            const auto c = static_cast<unsigned char>(s[i + k]);
            if ((c & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (c & 0x3f);
        }
        static const char32_t min_of[] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < min_of[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        f(cp);
        i += n;
    }
    return true;
}

bool acts_on_terminal(char32_t cp)
{
    return cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp <= 0x9f) || cp == 0x2028 || cp == 0x2029 ||
           (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069);
}

// Valid UTF-8 with nothing a terminal acts on; with `c0_allowed`, C0
// controls may stay (printable_json() leaves them to JSON, which escapes
// them in every string it dumps).
bool safe(std::string_view s, bool c0_allowed = false)
{
    bool ok = true;
    return each_code_point(s, [&](char32_t cp) { ok = ok && (!acts_on_terminal(cp) || (c0_allowed && cp < 0x20)); }) &&
           ok;
}

void fail(const char* what, std::string_view in)
{
    std::fprintf(stderr, "escape: %s (input of %zu bytes)\n", what, in.size());
    std::abort();
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    const std::string_view in(reinterpret_cast<const char*>(data), size);
    const std::string p = ukey::escape::printable(in);
    if (!safe(p))
        fail("printable() left a byte a terminal acts on, or invalid UTF-8", in);
    if (ukey::escape::printable(p) != p)
        fail("printable() is not idempotent", in);
    if (safe(in) && p != in)
        fail("printable() changed clean text", in);

    // As ukeyd and `ukey --json` print a value: dumped, invalid UTF-8
    // replaced, then printable_json().
    const nlohmann::json doc = {{"label", std::string(in)}, {"n", 1}};
    const std::string dump = doc.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    const std::string out = ukey::escape::printable_json(dump);
    if (!safe(out))
        fail("printable_json() left a byte a terminal acts on, or invalid UTF-8", in);
    if (nlohmann::json::parse(out, nullptr, false) != nlohmann::json::parse(dump))
        fail("printable_json() changed the document", in);
    // Whatever bytes it is given (not only a dump): valid UTF-8, and nothing
    // but the C0 controls a real dump never holds raw.
    if (!safe(ukey::escape::printable_json(in), true))
        fail("printable_json() of raw bytes is not safe", in);
    return 0;
}
