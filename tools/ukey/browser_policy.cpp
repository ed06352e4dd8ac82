// Firefox's and Chromium's system policy files, as `ukey browser` writes
// them (browser_policy.h).
#include "browser_policy.h"

#include "cli.h"

#include "client/public_file.h"
#include "token/files.h"

#include <filesystem>

namespace ukey::cli {

namespace {

using nlohmann::json;
namespace fs = std::filesystem;

constexpr std::size_t max_policy_file = 1u << 20;

// The file's JSON object; {} when there is none. A file that is not a JSON
// object is the administrator's to mend: refused, never overwritten.
json read_policy(const char* path)
{
    auto text = read_file_if_exists(path, max_policy_file);
    if (!text)
        throw Failure(setup, std::string("cannot read ") + path + ": " + shown(text.error().message));
    if (!*text)
        return json::object();
    json doc = json::parse(**text, nullptr, false);
    if (!doc.is_object())
        throw Failure(setup, std::string(path) + " is not a JSON object: mend it (or move it away) first; ukey "
                                                 "changes only its own entries in it");
    return doc;
}

void write_policy(const char* path, const json& doc)
{
    // 0644 in 0755 folders whatever the umask: the browsers of every user
    // read it.
    if (auto w = client::write_public_file(path, doc.dump(2) + "\n", 0644); !w)
        throw Failure(setup, "cannot write " + std::string(path) + ": " + shown(w.error().message) +
                                 (geteuid() != 0 ? " (as root)" : ""));
}

// An object member, made an object if it is missing or something else.
json& object_at(json& parent, const char* key)
{
    if (!parent.contains(key) || !parent[key].is_object())
        parent[key] = json::object();
    return parent[key];
}

} // namespace

std::string firefox_state(const std::string& module)
{
    const json doc = read_policy(firefox_policies);
    const json* add = nullptr;
    if (auto p = doc.find("policies"); p != doc.end() && p->is_object())
        if (auto sd = p->find("SecurityDevices"); sd != p->end() && sd->is_object())
            if (auto a = sd->find("Add"); a != sd->end() && a->is_object())
                add = &*a;
    if (!add || !add->contains("ukey") || !(*add)["ukey"].is_string())
        return "disabled";
    return (*add)["ukey"].get<std::string>() == module ? "enabled" : "stale";
}

bool set_firefox(const std::string& module, bool enable)
{
    json doc = read_policy(firefox_policies);
    const json before = doc;
    json& devices = object_at(object_at(doc, "policies"), "SecurityDevices");
    json& add = object_at(devices, "Add");
    json del = devices.contains("Delete") && devices["Delete"].is_array() ? devices["Delete"] : json::array();
    json kept = json::array();
    for (const auto& name : del)
        if (name != "ukey")
            kept.push_back(name);
    if (enable) {
        add["ukey"] = module;
    } else {
        add.erase("ukey");
        kept.push_back("ukey");
    }
    if (kept.empty())
        devices.erase("Delete");
    else
        devices["Delete"] = kept;
    if (add.empty())
        devices.erase("Add");
    if (doc == before)
        return false;
    write_policy(firefox_policies, doc);
    return true;
}

json AutoSelect::to_json() const
{
    return {{"pattern", pattern}, {"filter", {{field, {{"CN", cn}}}}}};
}

std::string auto_select_pattern(const std::string& url)
{
    const std::string scheme = "https://";
    if (url.compare(0, scheme.size(), scheme) != 0)
        throw Failure(usage, "--auto-select takes the site's https:// address, not '" + shown(url) + "'");
    const std::string rest = url.substr(scheme.size());
    const std::string host_port = rest.substr(0, rest.find_first_of("/?#"));
    if (host_port.empty() || host_port.find_first_of("@ \\\"") != std::string::npos ||
        host_port.size() > 253 + 6)
        throw Failure(usage, "'" + shown(url) + "' names no host");
    for (unsigned char c : host_port)
        if (c < 0x21 || c > 0x7e)
            throw Failure(usage, "'" + shown(url) + "' names no host (write the host in ASCII, as punycode)");
    return scheme + host_port;
}

std::vector<AutoSelect> auto_select_rules()
{
    std::vector<AutoSelect> out;
    const json doc = read_policy(chromium_auto_select);
    const auto list = doc.find("AutoSelectCertificateForUrls");
    if (list == doc.end() || !list->is_array())
        return out;
    for (const auto& entry : *list) {
        const json rule = entry.is_string() ? json::parse(entry.get<std::string>(), nullptr, false) : json();
        if (!rule.is_object() || !rule.contains("pattern") || !rule["pattern"].is_string() ||
            !rule.contains("filter") || !rule["filter"].is_object())
            continue;
        for (const char* field : {"ISSUER", "SUBJECT"}) {
            const json& f = rule["filter"];
            if (f.contains(field) && f[field].is_object() && f[field].contains("CN") && f[field]["CN"].is_string()) {
                out.push_back({rule["pattern"].get<std::string>(), field, f[field]["CN"].get<std::string>()});
                break;
            }
        }
    }
    return out;
}

namespace {

void write_rules(const std::vector<AutoSelect>& rules)
{
    if (rules.empty()) {
        std::error_code ec;
        fs::remove(chromium_auto_select, ec);
        if (ec)
            throw Failure(setup, "cannot remove " + std::string(chromium_auto_select) + ": " + ec.message());
        return;
    }
    json list = json::array();
    for (const auto& r : rules)
        list.push_back(r.to_json().dump()); // Chromium wants each rule as a JSON string
    write_policy(chromium_auto_select, {{"AutoSelectCertificateForUrls", list}});
}

} // namespace

bool set_auto_select(const AutoSelect& rule)
{
    auto rules = auto_select_rules();
    for (auto& r : rules) {
        if (r.pattern != rule.pattern)
            continue;
        if (r.field == rule.field && r.cn == rule.cn)
            return false;
        r = rule;
        write_rules(rules);
        return true;
    }
    rules.push_back(rule);
    write_rules(rules);
    return true;
}

bool remove_auto_select(const std::string& pattern)
{
    auto rules = auto_select_rules();
    const auto before = rules.size();
    std::erase_if(rules, [&](const AutoSelect& r) { return pattern.empty() || r.pattern == pattern; });
    if (rules.size() == before)
        return false;
    write_rules(rules);
    return true;
}

} // namespace ukey::cli
