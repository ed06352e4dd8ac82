#include "tool_config.h"

#include "token/peer_access.h"
#include "token/toml_read.h"
#include "token/ukeyd_events.h"

#include <fnmatch.h>
#include <pwd.h>
#include <unistd.h>

#include <cctype>
#include <functional>
#include <set>

namespace ukey {

using namespace toml_read;

namespace {

Result<void> parse_daemon(const toml::table& root, ToolConfig& cfg)
{
    auto& d = cfg.daemon;
    auto daemon_section = section(root, "daemon");
    if (!daemon_section)
        return daemon_section.error();
    if (const toml::table* t = *daemon_section) {
        const std::string ctx = "in [daemon]";
        // socket: read by the module (Config::daemon_socket).
        if (auto e = check_keys(*t, {"socket", "allow_users", "allow_groups", "pcsc", "rescan_interval", "scan_timeout"},
                                ctx);
            !e)
            return e;
        for (auto e : {read_strings(*t, "allow_users", d.allow_users, ctx),
                       read_strings(*t, "allow_groups", d.allow_groups, ctx), read_value(*t, "pcsc", d.pcsc, ctx),
                       read_seconds(*t, "rescan_interval", d.rescan_interval_s, 0, 86400, ctx),
                       read_seconds(*t, "scan_timeout", d.scan_timeout_s, 1, 600, ctx)})
            if (!e)
                return e;
    }
    auto expiry_section = section(root, "expiry");
    if (!expiry_section)
        return expiry_section.error();
    if (const toml::table* t = *expiry_section) {
        const std::string ctx = "in [expiry]";
        if (auto e = check_keys(*t, {"thresholds", "check_interval"}, ctx); !e)
            return e;
        if (auto e = read_seconds(*t, "check_interval", d.expiry_check_interval_s, 1, 7 * 86400, ctx); !e)
            return e;
        if (const toml::node* th = t->get("thresholds")) {
            const toml::array* a = th->as_array();
            if (!a)
                return problem("[expiry] thresholds must be a list of days (" + where(*th) + ")");
            std::set<unsigned, std::greater<>> days;
            for (const auto& e : *a) {
                auto v = whole_days(e);
                if (!v)
                    return problem("[expiry] thresholds must be whole days between 1 and 3650 (" + where(e) + ")");
                days.insert(*v);
            }
            d.expiry_thresholds.assign(days.begin(), days.end()); // largest first
        }
    }
    if (const toml::node* n = root.get("hook")) {
        const toml::array* hooks = n->as_array();
        if (!hooks)
            return problem("hooks are written [[hook]] (" + where(*n) + ")");
        for (std::size_t i = 0; i < hooks->size(); ++i) {
            const toml::table* t = (*hooks)[i].as_table();
            const std::string ctx = "in [[hook]] #" + std::to_string(i + 1);
            if (!t)
                return problem(ctx + " is not a table");
            if (auto e = check_keys(*t, {"events", "command", "timeout"}, ctx); !e)
                return e;
            HookConfig h;
            for (auto e : {read_strings(*t, "events", h.events, ctx), read_strings(*t, "command", h.command, ctx),
                           read_seconds(*t, "timeout", h.timeout_s, 1, 3600, ctx)})
                if (!e)
                    return e;
            for (const auto& ev : h.events)
                if (!event_named(ev))
                    return problem(ctx + ": unknown event '" + ev + "' (ukeyd(8) lists them under EVENTS)");
            if (h.command.empty() || !std::filesystem::path(h.command[0]).is_absolute())
                return problem(ctx + ": command must be a list whose first element is an absolute path, e.g. "
                             "[\"/usr/local/bin/on-key\", \"--notify\"] (it runs without a shell)");
            cfg.hooks.push_back(std::move(h));
        }
    }
    return {};
}

Result<void> read_days(const toml::table& t, unsigned& out, const std::string& context)
{
    const toml::node* d = t.get("threshold");
    if (!d)
        return {};
    auto v = whole_days(*d);
    if (!v)
        return problem("key 'threshold' " + context + " must be whole days between 1 and 3650 (" + where(*d) + ")");
    out = *v;
    return {};
}

Result<void> parse_ca(const toml::table& ct, const std::string& c, std::set<std::string>& names, RenewalCa& ca)
{
    if (auto e = check_keys(ct, {"name", "url", "fingerprint", "keys", "issuer", "threshold", "mode", "keep_old",
                                 "timeout", "challenge_file"},
                            c);
        !e)
        return e;
    std::string mode = "rekey";
    for (auto e : {read_value(ct, "name", ca.name, c), read_value(ct, "url", ca.url, c),
                   read_value(ct, "fingerprint", ca.fingerprint, c), read_strings(ct, "keys", ca.keys, c),
                   read_value(ct, "issuer", ca.issuer, c), read_days(ct, ca.threshold_days, c),
                   read_value(ct, "mode", mode, c), read_value(ct, "keep_old", ca.keep_old, c),
                   read_seconds(ct, "timeout", ca.timeout_s, 1, 3600, c),
                   read_path(ct, "challenge_file", ca.challenge_file, c)})
        if (!e)
            return e;
    if (!valid_name(ca.name))
        return problem(c + ": name must be 1-32 letters, digits, '-', '_' or '.'");
    if (!names.insert(ca.name).second)
        return problem(c + ": the name '" + ca.name + "' is used twice");
    if (ca.url.rfind("http://", 0) != 0 || ca.url.size() <= 7)
        return problem(c + " ('" + ca.name + "'): url must be an http:// URL of the SCEP service, not '" + ca.url +
               "' (SCEP protects its messages itself; https is not supported)");
    std::string fp;
    for (char ch : ca.fingerprint)
        if (ch != ':' && ch != ' ')
            fp += char(std::tolower(static_cast<unsigned char>(ch)));
    if (fp.size() != 64 || fp.find_first_not_of("0123456789abcdef") != std::string::npos)
        return problem(c + " ('" + ca.name + "'): fingerprint must be the CA certificate's SHA-256 in hex (64 digits, "
                   "colons allowed), as `openssl x509 -noout -fingerprint -sha256` prints it");
    ca.fingerprint = fp;
    if (mode == "rekey")
        ca.rekey = true;
    else if (mode == "same-key")
        ca.rekey = false;
    else
        return problem(c + " ('" + ca.name + "'): mode must be \"rekey\" or \"same-key\", not '" + mode + "'");
    return {};
}

// [renewal] and its [[renewal.ca]] entries (docs/renewal.md).
Result<void> parse_renewal(const toml::table& root, ToolConfig& cfg)
{
    return with_section(root, "renewal", [&](const toml::table* t) -> Result<void> {
        auto& r = cfg.renewal;
        const std::string ctx = "in [renewal]";
        if (auto e = check_keys(*t, {"threshold", "pin_file", "ukey", "timeout", "ca"}, ctx); !e)
            return e;
        for (auto e : {read_days(*t, r.threshold_days, ctx), read_path(*t, "pin_file", r.pin_file, ctx),
                       read_path(*t, "ukey", r.ukey, ctx), read_seconds(*t, "timeout", r.timeout_s, 1, 3600, ctx)})
            if (!e)
                return e;
        const toml::node* cn = t->get("ca");
        if (!cn)
            return {};
        const toml::array* cas = cn->as_array();
        if (!cas)
            return problem("CAs for renewal are written [[renewal.ca]] (" + where(*cn) + ")");
        std::set<std::string> names;
        for (std::size_t i = 0; i < cas->size(); ++i) {
            const toml::table* ct = (*cas)[i].as_table();
            const std::string c = "in [[renewal.ca]] #" + std::to_string(i + 1);
            if (!ct)
                return problem(c + " is not a table");
            RenewalCa ca;
            if (auto e = parse_ca(*ct, c, names, ca); !e)
                return e;
            r.cas.push_back(std::move(ca));
        }
        return {};
    });
}

Result<void> parse_service(const toml::table& root, ToolConfig& cfg)
{
    auto& s = cfg.service;
    return with_section(root, "service", [&](const toml::table* t) -> Result<void> {
        const std::string ctx = "in [service]";
        // admin_groups: read by the module (Config::service_admin_groups).
        if (auto e = check_keys(*t, {"enabled", "socket", "user", "admin_groups", "max_per_user"}, ctx); !e)
            return e;
        std::string socket = s.socket.string();
        int64_t max_per_user = s.max_per_user;
        for (auto e : {read_value(*t, "enabled", s.enabled, ctx), read_value(*t, "socket", socket, ctx),
                       read_value(*t, "user", s.user, ctx), read_value(*t, "max_per_user", max_per_user, ctx)})
            if (!e)
                return e;
        s.socket = socket;
        if (!s.socket.is_absolute() || socket.size() >= 108)
            return problem("[service] socket must be an absolute path shorter than 108 bytes, not '" + socket + "'");
        if (max_per_user < 1 || max_per_user > 1024)
            return problem("[service] max_per_user must be between 1 and 1024");
        s.max_per_user = unsigned(max_per_user);
        if (s.user.empty() || s.user == "root" || s.user == "0" || s.user.rfind("0:", 0) == 0)
            return problem("[service] user must name a user other than root (the owner of state_dir)");
        if (s.enabled && s.socket == cfg.daemon_socket)
            return problem("[service] socket must differ from [daemon] socket");
        return {};
    });
}

} // namespace

bool glob_match(const std::string& pattern, const std::string& text)
{
    return ::fnmatch(pattern.c_str(), text.c_str(), 0) == 0;
}

const RenewalCa* renewal_ca_for(const ToolConfig& cfg, const std::string& key_label, const std::string& key_serial,
                                const std::string& issuer)
{
    for (const auto& ca : cfg.renewal.cas) {
        bool key_ok = ca.keys.empty();
        for (const auto& g : ca.keys)
            key_ok = key_ok || glob_match(g, key_label) || glob_match(g, key_serial);
        if (key_ok && (ca.issuer.empty() || issuer.find(ca.issuer) != std::string::npos))
            return &ca;
    }
    return nullptr;
}

std::optional<UserIds> service_user_ids(const std::string& user)
{
    if (const passwd* pw = getpwnam(user.c_str()))
        return UserIds{pw->pw_uid, pw->pw_gid};
    const auto colon = user.find(':');
    auto uid = numeric_id(user.substr(0, colon));
    auto gid = colon == std::string::npos ? uid : numeric_id(user.substr(colon + 1));
    if (!uid || !gid)
        return std::nullopt;
    return UserIds{*uid, *gid};
}

std::optional<std::filesystem::path> service_socket_for_me(const ToolConfig& cfg)
{
    if (!cfg.service.enabled)
        return std::nullopt;
    const auto ids = service_user_ids(cfg.service.user);
    if (ids && ids->uid == geteuid())
        return std::nullopt;
    return cfg.service.socket;
}

Result<ToolConfig> parse_tool_config(std::string_view text, const std::filesystem::path& source)
{
    auto core = parse_config(text, source);
    if (!core)
        return core.error();
    ToolConfig cfg;
    static_cast<Config&>(cfg) = std::move(*core);
    auto parsed = toml_read::parse(text, source);
    if (!parsed) // parse_config accepted the text: it parses
        return config_error(source, parsed.error().message);
    const toml::table& root = *parsed;
    if (auto e = parse_daemon(root, cfg); !e)
        return config_error(source, e.error().message);
    if (auto e = parse_renewal(root, cfg); !e)
        return config_error(source, e.error().message);
    if (auto e = parse_service(root, cfg); !e)
        return config_error(source, e.error().message);
    return cfg;
}

Result<ToolConfig> load_tool_config(const std::filesystem::path& path)
{
    return load_with(path, parse_tool_config);
}

} // namespace ukey
