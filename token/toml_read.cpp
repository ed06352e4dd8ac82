#include "token/toml_read.h"

#include "token/toml_shift.h"
#include "token/utf8.h"

#include <cctype>
#include <cstdio>
#include <utility>

namespace ukey::toml_read {

namespace {

// "U+FF1D" for the UTF-8 sequence at `p` (or "byte 0xNN" when it is not one).
std::string code_point_at(std::string_view t, std::size_t p)
{
    char32_t c = 0;
    if (utf8::decode(t, p, c) != 0)
        return utf8::code_point_name(c);
    char buf[16];
    std::snprintf(buf, sizeof buf, "byte 0x%02X", static_cast<unsigned char>(t[p]));
    return buf;
}

// The line (from 1) of the first byte beyond ASCII outside strings and
// comments, and that byte's offset; 0 when there is none. Strings are
// followed as TOML writes them: "..." and '...' end at the line's end at the
// latest, """...""" and '''...''' may span lines, a backslash escapes the
// next character in basic strings only.
std::pair<std::size_t, std::size_t> non_ascii_outside_strings(std::string_view t)
{
    std::size_t line = 1, i = 0;
    if (t.substr(0, 3) == "\xEF\xBB\xBF")
        i = 3; // a byte order mark
    auto starts = [&](std::size_t at, std::string_view s) { return t.substr(at, s.size()) == s; };
    while (i < t.size()) {
        const char c = t[i];
        if (c == '\n') {
            ++line;
            ++i;
        } else if (c == '#') {
            while (i < t.size() && t[i] != '\n')
                ++i;
        } else if (c == '"' || c == '\'') {
            const bool basic = c == '"';
            const std::string_view triple = basic ? "\"\"\"" : "\'\'\'";
            const bool multi = starts(i, triple);
            i += multi ? 3 : 1;
            while (i < t.size()) {
                if (basic && t[i] == '\\' && i + 1 < t.size()) {
                    if (t[i + 1] == '\n')
                        ++line;
                    i += 2;
                } else if (multi && starts(i, triple)) {
                    i += 3;
                    for (int q = 0; q < 2 && i < t.size() && t[i] == c; ++q)
                        ++i; // up to two quotes of the content before the end
                    break;
                } else if (!multi && t[i] == c) {
                    ++i;
                    break;
                } else if (t[i] == '\n') {
                    if (!multi)
                        break; // toml++ says what is wrong
                    ++line;
                    ++i;
                } else {
                    ++i;
                }
            }
        } else if (static_cast<unsigned char>(c) >= 0x80) {
            return {line, i};
        } else {
            ++i;
        }
    }
    return {0, 0};
}

} // namespace

std::string basic_string(std::string_view s)
{
    std::string out = "\"";
    for (unsigned char c : s) {
        if (c == '"' || c == '\\') {
            out += '\\';
            out += static_cast<char>(c);
        } else if (c < 0x20 || c == 0x7f) {
            char u[8];
            std::snprintf(u, sizeof u, "\\u%04X", c);
            out += u;
        } else {
            out += static_cast<char>(c);
        }
    }
    return out + "\"";
}

Result<toml::table> parse(std::string_view text, const std::filesystem::path& source)
{
    if (auto [line, at] = non_ascii_outside_strings(text); line != 0)
        return problem("line " + std::to_string(line) + ": the character " + code_point_at(text, at) +
                       " may only be inside a quoted value or a comment (a full-width character from an input "
                       "method? type it again in ASCII)");
    auto shifted = toml_shift::shift_in(text);
    if (!shifted)
        return shifted.error();
    try {
        toml::table t = toml::parse(*shifted, source.string());
        toml_shift::shift_out(t);
        return t;
    } catch (const toml::parse_error& e) {
        return problem("line " + std::to_string(e.source().begin.line) + ": " +
                       toml_shift::shift_out(e.description()));
    }
}

Error config_error(const std::filesystem::path& source, const std::string& what)
{
    return Error{CKR_FUNCTION_FAILED, "config " + source.string() + ": " + what};
}

std::string where(const toml::node& n)
{
    const auto& s = n.source();
    return "line " + std::to_string(s.begin.line);
}

Result<const toml::table*> section(const toml::table& root, std::string_view name)
{
    const toml::node* n = root.get(name);
    if (!n)
        return nullptr;
    if (const toml::table* t = n->as_table())
        return t;
    return problem(std::string("[").append(name) + "] must be a table (" + where(*n) + ")");
}

Result<void> check_keys(const toml::table& t, std::initializer_list<std::string_view> known,
                       const std::string& context)
{
    for (const auto& [k, v] : t) {
        bool ok = false;
        for (auto name : known)
            ok = ok || k.str() == name;
        if (!ok)
            return problem("unknown key '" + std::string(k.str()) + "' " + context + " (" + where(v) + ")");
    }
    return {};
}

bool valid_name(const std::string& s)
{
    if (s.empty() || s.size() > 32)
        return false;
    for (char c : s)
        if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.'))
            return false;
    return true;
}

Result<void> read_seconds(const toml::table& t, std::string_view key, double& out, double lo, double hi,
                         const std::string& context)
{
    const toml::node* n = t.get(key);
    if (!n)
        return {};
    std::optional<double> v;
    if (n->is_integer())
        v = double(*n->value<int64_t>());
    else if (n->is_floating_point())
        v = *n->value<double>();
    if (!v)
        return problem("key '" + std::string(key) + "' " + context + " must be a number of seconds (" + where(*n) + ")");
    if (!(*v >= lo && *v <= hi))
        return problem("key '" + std::string(key) + "' " + context + " must be between " + std::to_string(int64_t(lo)) +
               " and " + std::to_string(int64_t(hi)) + " seconds (" + where(*n) + ")");
    out = *v;
    return {};
}

Result<void> read_strings(const toml::table& t, std::string_view key, std::vector<std::string>& out,
                         const std::string& context)
{
    const toml::node* n = t.get(key);
    if (!n)
        return {};
    const toml::array* a = n->as_array();
    std::string bad = "key '" + std::string(key) + "' " + context + " must be a list of strings (" + where(*n) + ")";
    if (!a)
        return problem(bad);
    out.clear();
    for (const auto& e : *a) {
        auto v = e.value<std::string>();
        if (!v || !e.is_string())
            return problem(bad);
        out.push_back(*v);
    }
    return {};
}

std::optional<unsigned> whole_days(const toml::node& n)
{
    auto v = n.is_integer() ? n.value<int64_t>() : std::nullopt;
    if (!v || *v < 1 || *v > 3650)
        return std::nullopt;
    return unsigned(*v);
}

Result<void> read_path(const toml::table& t, std::string_view key, std::filesystem::path& out,
                      const std::string& context)
{
    std::string v;
    if (auto e = read_value(t, key, v, context); !e)
        return e;
    if (!t.get(key))
        return {};
    if (!std::filesystem::path(v).is_absolute())
        return problem("key '" + std::string(key) + "' " + context + " must be an absolute path, not '" + v + "'");
    out = v;
    return {};
}

} // namespace ukey::toml_read
