#include "auto_select.h"

#include "net.h"

#include "token/files.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <filesystem>

namespace ukey::cli::doctor {

namespace {

std::string lower(std::string s)
{
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return s;
}

std::optional<PrincipalFilter> principal(const nlohmann::json& filter, const char* which)
{
    const auto it = filter.find(which);
    if (it == filter.end() || !it->is_object())
        return std::nullopt;
    PrincipalFilter p;
    auto field = [&](const char* name, std::optional<std::string>& to) {
        if (const auto f = it->find(name); f != it->end() && f->is_string())
            to = f->get<std::string>();
    };
    field("CN", p.cn);
    field("L", p.l);
    field("O", p.o);
    field("OU", p.ou);
    return p;
}

// Every value of attribute `nid` in the name (UTF-8).
std::vector<std::string> values(const X509_NAME* name, int nid)
{
    std::vector<std::string> out;
    for (int i = -1; (i = X509_NAME_get_index_by_NID(name, nid, i)) >= 0 && out.size() < 16;) {
        unsigned char* utf8 = nullptr;
        const int n = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i)));
        if (n >= 0)
            out.emplace_back(reinterpret_cast<char*>(utf8), static_cast<std::size_t>(n));
        OPENSSL_free(utf8);
    }
    return out;
}

// Chromium compares CN and L with the name's (last) one, O and OU with any.
bool principal_matches(const PrincipalFilter& p, const X509_NAME* name)
{
    auto last_is = [&](const std::optional<std::string>& want, int nid) {
        if (!want)
            return true;
        const auto v = values(name, nid);
        return (v.empty() ? std::string() : v.back()) == *want;
    };
    auto any_is = [&](const std::optional<std::string>& want, int nid) {
        if (!want)
            return true;
        const auto v = values(name, nid);
        return std::find(v.begin(), v.end(), *want) != v.end();
    };
    return last_is(p.cn, NID_commonName) && last_is(p.l, NID_localityName) && any_is(p.o, NID_organizationName) &&
           any_is(p.ou, NID_organizationalUnitName);
}

} // namespace

std::vector<AutoSelectRule> parse_auto_select(const std::string& file, std::string_view text)
{
    std::vector<AutoSelectRule> rules;
    const auto doc = nlohmann::json::parse(text, nullptr, false);
    if (!doc.is_object())
        return rules;
    const auto list = doc.find("AutoSelectCertificateForUrls");
    if (list == doc.end() || !list->is_array())
        return rules;
    for (const auto& entry : *list) {
        if (!entry.is_string() || rules.size() >= 256)
            continue;
        const auto rule = nlohmann::json::parse(entry.get<std::string>(), nullptr, false);
        if (!rule.is_object())
            continue;
        const auto pattern = rule.find("pattern");
        const auto filter = rule.find("filter");
        if (pattern == rule.end() || !pattern->is_string() || filter == rule.end() || !filter->is_object())
            continue;
        rules.push_back({file, pattern->get<std::string>(), principal(*filter, "ISSUER"), principal(*filter, "SUBJECT")});
    }
    return rules;
}

std::vector<AutoSelectRule> read_auto_select(std::span<const char* const> dirs)
{
    std::vector<AutoSelectRule> rules;
    for (const char* dir : dirs) {
        std::error_code ec;
        std::vector<std::filesystem::path> files;
        std::filesystem::directory_iterator it(dir, ec), end;
        for (int n = 0; !ec && it != end && n < 64; it.increment(ec), ++n)
            if (it->path().extension() == ".json" && it->is_regular_file(ec))
                files.push_back(it->path());
        std::sort(files.begin(), files.end());
        for (const auto& p : files)
            if (auto text = read_file(p, 1u << 20)) {
                auto more = parse_auto_select(p.string(), *text);
                rules.insert(rules.end(), more.begin(), more.end());
            }
    }
    return rules;
}

bool url_matches(const std::string& pattern_text, const std::string& url)
{
    std::string host, port;
    bool tls = false;
    if (!split_url(url, host, port, tls))
        return false;
    std::string p = lower(pattern_text);
    if (p == "*")
        return true;
    std::string scheme = "*";
    if (const auto at = p.find("://"); at != std::string::npos) {
        scheme = p.substr(0, at);
        p = p.substr(at + 3);
    }
    if (scheme != "*" && scheme != (tls ? "https" : "http"))
        return false;
    p = p.substr(0, p.find('/'));
    std::string want_port = scheme == "*" ? "*" : (scheme == "https" ? "443" : "80");
    if (const auto colon = p.rfind(':'); colon != std::string::npos && p.find(']', colon) == std::string::npos) {
        want_port = p.substr(colon + 1);
        p = p.substr(0, colon);
    }
    if (want_port != "*" && want_port != port)
        return false;
    host = lower(host);
    if (p == "*")
        return true;
    if (p.rfind("[*.]", 0) == 0) {
        const std::string domain = p.substr(4);
        return host == domain ||
               (host.size() > domain.size() && host.compare(host.size() - domain.size(), domain.size(), domain) == 0 &&
                host[host.size() - domain.size() - 1] == '.');
    }
    return host == p;
}

bool cert_matches(const AutoSelectRule& rule, X509* cert)
{
    return (!rule.issuer || principal_matches(*rule.issuer, X509_get_issuer_name(cert))) &&
           (!rule.subject || principal_matches(*rule.subject, X509_get_subject_name(cert)));
}

} // namespace ukey::cli::doctor
