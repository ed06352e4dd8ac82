// Reading the config's TOML strictly: unknown keys and wrong types are
// errors naming the key and the line. Shared by the module's config
// (token/config.*) and the tools' sections (tools/common/tool_config.*).
// Each function returns success, or a problem() saying what is wrong;
// config_error() adds the file.
#pragma once

#include "token/result.h"

#define TOML_ENABLE_FORMATTERS 0
#include <toml++/toml.h>

#include <cstdint>
#include <filesystem>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace ukey::toml_read {

// "config FILE: what", the one form of every config error.
Error config_error(const std::filesystem::path& source, const std::string& what);

// What is wrong, without the file.
inline Error problem(std::string what)
{
    return Error{CKR_FUNCTION_FAILED, std::move(what)};
}

// The TOML document `text` of `source`, or a problem() naming the line.
// Every TOML text ukey reads goes through here. A character beyond ASCII
// outside a quoted string or a comment is refused first, with a hint (TOML
// 1.0 allows none there, and a full-width '＝' typed by an input method is
// such a character); toml++ sees the text through token/toml_shift.h.
Result<toml::table> parse(std::string_view text, const std::filesystem::path& source);

// `s` as a TOML basic string: quoted, with '"', '\\' and control characters
// escaped (for the config texts ukey writes, and the tests').
std::string basic_string(std::string_view s);

// "line N" of a node.
std::string where(const toml::node& n);

// The section `name` of `root`: nullptr if there is none, an error if it is
// not a table.
Result<const toml::table*> section(const toml::table& root, std::string_view name);
// Runs `body` (taking the section's table, never null) when `root` has the
// section `name`; nothing when it has none; an error if it is not a table.
template <class F>
Result<void> with_section(const toml::table& root, std::string_view name, F&& body)
{
    auto s = section(root, name);
    if (!s)
        return s.error();
    if (!*s)
        return {};
    return body(*s);
}

// Unknown keys are errors: a typo such as "modul" must not silently fall back
// to a default.
Result<void> check_keys(const toml::table& t, std::initializer_list<std::string_view> known,
                       const std::string& context);

template <class T>
Result<void> read_value(const toml::table& t, std::string_view key, T& out, const std::string& context)
{
    const toml::node* n = t.get(key);
    if (!n)
        return {};
    // An integer key takes only an integer: toml++'s float-to-integer
    // conversion casts before it checks the range (9e90 is undefined
    // behaviour; tests/fuzz/corpus/config/ubsan-float-to-int).
    constexpr bool integer = std::is_integral_v<T> && !std::is_same_v<T, bool>;
    auto v = !integer || n->is_integer() ? n->value<T>() : std::nullopt;
    if (!v || (std::is_same_v<T, bool> != n->is_boolean()))
        return problem("key '" + std::string(key) + "' " + context + " has the wrong type (" + where(*n) + ")");
    out = *v;
    return {};
}

// 1-32 letters, digits, '-', '_' or '.': names of backends and CAs.
bool valid_name(const std::string& s);

// A number of seconds: integer or float, within [lo, hi].
Result<void> read_seconds(const toml::table& t, std::string_view key, double& out, double lo, double hi,
                         const std::string& context);

Result<void> read_strings(const toml::table& t, std::string_view key, std::vector<std::string>& out,
                         const std::string& context);

// Whole days in [1, 3650]: an integer only (see read_value).
std::optional<unsigned> whole_days(const toml::node& n);

// An absolute path, if the key is there.
Result<void> read_path(const toml::table& t, std::string_view key, std::filesystem::path& out,
                      const std::string& context);

} // namespace ukey::toml_read
