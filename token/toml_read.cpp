#include "token/toml_read.h"

#include <cctype>

namespace ukey::toml_read {

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
