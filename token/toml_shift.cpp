#include "token/toml_shift.h"

#include "token/bytes.h"
#include "token/utf8.h"

#include <optional>
#include <vector>

namespace ukey::toml_shift {
namespace {

// toml++ 3.3 splits U+00A0..U+FEFF into blocks of 0x3FA code points and
// answers all of them but blocks 0, 11 and 63 (U+00A0, U+3000 and U+FEFF
// themselves it answers too). Each block moves whole: U+3000 is then not
// whitespace to toml++, which is what TOML 1.0 says anyway.
struct Span {
    char32_t first, last, moved;
};
constexpr Span spans[] = {{0x00A1, 0x0499, 0xE000}, {0x2C5E, 0x3057, 0xE400}, {0xFB26, 0xFEFE, 0xE800}};
// Where they move: private use, and all of it in blocks toml++ answers.
constexpr char32_t reserved_first = 0xE000, reserved_last = 0xEBFF;

char32_t moved_in(char32_t c)
{
    for (const Span& s : spans)
        if (c >= s.first && c <= s.last)
            return s.moved + (c - s.first);
    return c;
}

char32_t moved_out(char32_t c)
{
    for (const Span& s : spans)
        if (c >= s.moved && c <= s.moved + (s.last - s.first))
            return s.first + (c - s.moved);
    return c;
}

// `text` with each well-formed character passed through `f`; the bytes of
// ill-formed UTF-8 stay as they are (toml++ refuses them).
template <class F>
std::string mapped(std::string_view text, F f)
{
    std::string out;
    out.reserve(text.size() + text.size() / 2);
    for (std::size_t i = 0; i < text.size();) {
        char32_t c = 0;
        const std::size_t n = utf8::decode(text, i, c);
        if (n == 0) {
            out += text[i++];
            continue;
        }
        utf8::append(out, f(c));
        i += n;
    }
    return out;
}

// The code point of the \uXXXX or \UXXXXXXXX escape whose backslash is at
// t[i], if it is one.
std::optional<char32_t> escape_at(std::string_view t, std::size_t i)
{
    if (i + 1 >= t.size() || (t[i + 1] != 'u' && t[i + 1] != 'U'))
        return std::nullopt;
    const std::size_t digits = t[i + 1] == 'u' ? 4 : 8;
    if (i + 2 + digits > t.size())
        return std::nullopt;
    char32_t c = 0;
    for (std::size_t k = 0; k < digits; ++k) {
        const int d = hex_value(t[i + 2 + k]);
        if (d < 0)
            return std::nullopt;
        c = c * 16 + static_cast<char32_t>(d);
    }
    return c;
}

Error refused(std::size_t line, char32_t c)
{
    return toml_read::problem("line " + std::to_string(line) + ": the private-use character " +
                              utf8::code_point_name(c) + " is not accepted");
}

void shift_out_node(toml::node& n);

void shift_out_table(toml::table& t)
{
    std::vector<std::string> moved_keys;
    for (auto&& [k, v] : t) {
        shift_out_node(v);
        if (shift_out(k.str()) != k.str())
            moved_keys.emplace_back(k.str());
    }
    for (const std::string& old : moved_keys) {
        auto it = t.find(old);
        const toml::key renamed(shift_out(old), it->first.source());
        // The node moves as what it is (table, array or value), keeping its
        // source; the bijection means `renamed` is not a key of `t` yet.
        it->second.visit([&](auto&& node) { t.insert(renamed, std::move(node)); });
        t.erase(old);
    }
}

void shift_out_node(toml::node& n)
{
    if (auto* s = n.as_string())
        s->get() = shift_out(s->get());
    else if (auto* a = n.as_array())
        for (toml::node& e : *a)
            shift_out_node(e);
    else if (auto* t = n.as_table())
        shift_out_table(*t);
}

} // namespace

Result<std::string> shift_in(std::string_view text)
{
    std::size_t line = 1;
    for (std::size_t i = 0; i < text.size();) {
        if (text[i] == '\n')
            ++line;
        if (text[i] == '\\') {
            if (i + 1 < text.size() && text[i + 1] == '\\') {
                i += 2; // an escaped backslash: what follows is no escape
                continue;
            }
            if (auto c = escape_at(text, i); c && *c >= reserved_first && *c <= reserved_last)
                return refused(line, *c);
        }
        char32_t c = 0;
        const std::size_t n = utf8::decode(text, i, c);
        if (n != 0 && c >= reserved_first && c <= reserved_last)
            return refused(line, c);
        i += n != 0 ? n : 1;
    }
    return mapped(text, moved_in);
}

std::string shift_out(std::string_view text)
{
    return mapped(text, moved_out);
}

void shift_out(toml::table& t)
{
    shift_out_table(t);
}

} // namespace ukey::toml_shift
