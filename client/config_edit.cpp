// Editing ukey.conf's [[backend]] tables as text (see config_edit.h).
#include "client/config_edit.h"

#include "token/toml_read.h"

#include <sstream>
#include <vector>

namespace ukey::client {

namespace {

Error refused(std::string why)
{
    return Error{CKR_OK, std::move(why)};
}

std::string trimmed(std::string_view line)
{
    const auto a = line.find_first_not_of(" \t\r");
    if (a == std::string_view::npos)
        return {};
    return std::string(line.substr(a, line.find_last_not_of(" \t\r") - a + 1));
}

// A table header line: "[name]" or "[[name]]", maybe with a comment.
bool is_header(std::string_view line)
{
    const std::string t = trimmed(line);
    return !t.empty() && t[0] == '[';
}

bool is_backend_header(std::string_view line)
{
    std::string t = trimmed(line);
    if (auto hash = t.find('#'); hash != std::string::npos)
        t = trimmed(t.substr(0, hash));
    std::string compact;
    for (char c : t)
        if (c != ' ' && c != '\t')
            compact += c;
    return compact == "[[backend]]";
}

// The backend name a [[backend]] table's own text sets, or "".
std::string name_in(const std::string& table_text)
{
    auto t = toml_read::parse(table_text, "ukey.conf");
    if (t)
        if (const auto* name = (*t)["backend"][0]["name"].as_string())
            return name->get();
    return {};
}

Result<std::string> checked(std::string text, const std::filesystem::path& source)
{
    if (auto cfg = parse_config(text, source); !cfg)
        return refused("the config would not be valid: " + cfg.error().message);
    return text;
}

} // namespace

Result<std::string> config_add_backend(std::string_view text, const std::filesystem::path& source,
                                       const BackendConfig& b)
{
    if (!text.empty()) {
        if (auto cfg = parse_config(text, source); cfg) {
            for (const auto& have : cfg->backends)
                if (have.name == b.name)
                    return refused("a backend named '" + b.name + "' is already configured in " + source.string());
        }
    }
    std::string out(text);
    if (!out.empty() && out.back() != '\n')
        out += '\n';
    if (!out.empty())
        out += '\n';
    out += "[[backend]]\nname = " + toml_read::basic_string(b.name) + "\nmodule = " + toml_read::basic_string(b.module) + "\n";
    if (b.pin_counter == PinCounter::token)
        out += "pin_counter = \"token\"\n";
    if (b.optional)
        out += "optional = true\n";
    if (!b.removable)
        out += "removable = false\n";
    if (!b.fixes)
        out += "fixes = false\n";
    return checked(std::move(out), source);
}

Result<std::string> config_remove_backend(std::string_view text, const std::filesystem::path& source,
                                          const std::string& name)
{
    std::vector<std::string> lines;
    {
        std::istringstream in{std::string(text)};
        for (std::string line; std::getline(in, line);)
            lines.push_back(line);
    }
    for (std::size_t i = 0; i < lines.size(); ++i) {
        if (!is_backend_header(lines[i]))
            continue;
        std::size_t end = i + 1;
        while (end < lines.size() && !is_header(lines[end]))
            ++end;
        std::string table;
        for (std::size_t k = i; k < end; ++k)
            table += lines[k] + "\n";
        if (name_in(table) != name)
            continue;
        // The blank lines that ended the table go with it: the text before
        // keeps its own.
        std::string out;
        for (std::size_t k = 0; k < lines.size(); ++k)
            if (k < i || k >= end)
                out += lines[k] + "\n";
        return checked(std::move(out), source);
    }
    return refused("no backend named '" + name + "' is configured in " + source.string());
}

} // namespace ukey::client
