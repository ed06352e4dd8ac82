#include "token/config.h"

#include "token/file_trust.h"

#include <cctype>
#include <cerrno>
#include <cstring>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <optional>
#include <set>
#include <sstream>
#include <type_traits>

#include <pwd.h>
#include <unistd.h>

#define TOML_ENABLE_FORMATTERS 0
#include <toml++/toml.h>

namespace ukey {
namespace {

Error config_error(const std::filesystem::path& source, const std::string& what)
{
    return Error{CKR_FUNCTION_FAILED, "config " + source.string() + ": " + what};
}

std::string where(const toml::node& n)
{
    const auto& s = n.source();
    return "line " + std::to_string(s.begin.line);
}

// Unknown keys are errors: a typo such as "modul" must not silently fall back
// to a default.
std::string check_keys(const toml::table& t, std::initializer_list<std::string_view> known,
                       const std::string& context)
{
    for (const auto& [k, v] : t) {
        bool ok = false;
        for (auto name : known)
            ok = ok || k.str() == name;
        if (!ok)
            return "unknown key '" + std::string(k.str()) + "' " + context + " (" + where(v) + ")";
    }
    return {};
}

template <class T>
std::string read_value(const toml::table& t, std::string_view key, T& out, const std::string& context)
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
        return "key '" + std::string(key) + "' " + context + " has the wrong type (" + where(*n) + ")";
    out = *v;
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

// A number of seconds: integer or float, within [lo, hi].
std::string read_seconds(const toml::table& t, std::string_view key, double& out, double lo, double hi,
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
        return "key '" + std::string(key) + "' " + context + " must be a number of seconds (" + where(*n) + ")";
    if (!(*v >= lo && *v <= hi))
        return "key '" + std::string(key) + "' " + context + " must be between " + std::to_string(int64_t(lo)) +
               " and " + std::to_string(int64_t(hi)) + " seconds (" + where(*n) + ")";
    out = *v;
    return {};
}

std::string read_strings(const toml::table& t, std::string_view key, std::vector<std::string>& out,
                         const std::string& context)
{
    const toml::node* n = t.get(key);
    if (!n)
        return {};
    const toml::array* a = n->as_array();
    std::string bad = "key '" + std::string(key) + "' " + context + " must be a list of strings (" + where(*n) + ")";
    if (!a)
        return bad;
    out.clear();
    for (const auto& e : *a) {
        auto v = e.value<std::string>();
        if (!v || !e.is_string())
            return bad;
        out.push_back(*v);
    }
    return {};
}

// The event names ukeyd emits (docs/ukeyd.md).
const std::set<std::string>& event_names()
{
    static const std::set<std::string> names{
        "key-inserted", "key-removed",  "reader-added", "reader-removed", "pin-locked",
        "cert-expiring", "cert-expired", "pcsc-down",   "pcsc-up",        "renewal"};
    return names;
}

std::string parse_daemon(const toml::table& root, Config& cfg)
{
    auto& d = cfg.daemon;
    if (const toml::node* n = root.get("daemon")) {
        const toml::table* t = n->as_table();
        if (!t)
            return "[daemon] must be a table (" + where(*n) + ")";
        const std::string ctx = "in [daemon]";
        if (auto e = check_keys(*t, {"socket", "allow_users", "allow_groups", "pcsc", "rescan_interval", "scan_timeout"},
                                ctx);
            !e.empty())
            return e;
        std::string socket = d.socket.string();
        for (auto e : {read_value(*t, "socket", socket, ctx), read_strings(*t, "allow_users", d.allow_users, ctx),
                       read_strings(*t, "allow_groups", d.allow_groups, ctx), read_value(*t, "pcsc", d.pcsc, ctx),
                       read_seconds(*t, "rescan_interval", d.rescan_interval_s, 0, 86400, ctx),
                       read_seconds(*t, "scan_timeout", d.scan_timeout_s, 1, 600, ctx)})
            if (!e.empty())
                return e;
        d.socket = socket;
        if (!d.socket.is_absolute() || socket.size() >= 108)
            return "[daemon] socket must be an absolute path shorter than 108 bytes, not '" + socket + "'";
    }
    if (const toml::node* n = root.get("expiry")) {
        const toml::table* t = n->as_table();
        if (!t)
            return "[expiry] must be a table (" + where(*n) + ")";
        const std::string ctx = "in [expiry]";
        if (auto e = check_keys(*t, {"thresholds", "check_interval"}, ctx); !e.empty())
            return e;
        if (auto e = read_seconds(*t, "check_interval", d.expiry_check_interval_s, 1, 7 * 86400, ctx); !e.empty())
            return e;
        if (const toml::node* th = t->get("thresholds")) {
            const toml::array* a = th->as_array();
            if (!a)
                return "[expiry] thresholds must be a list of days (" + where(*th) + ")";
            std::set<unsigned, std::greater<>> days;
            for (const auto& e : *a) {
                auto v = e.is_integer() ? e.value<int64_t>() : std::nullopt; // see read_value
                if (!v || *v < 1 || *v > 3650)
                    return "[expiry] thresholds must be whole days between 1 and 3650 (" + where(e) + ")";
                days.insert(unsigned(*v));
            }
            d.expiry_thresholds.assign(days.begin(), days.end()); // largest first
        }
    }
    if (const toml::node* n = root.get("hook")) {
        const toml::array* hooks = n->as_array();
        if (!hooks)
            return "hooks are written [[hook]] (" + where(*n) + ")";
        for (std::size_t i = 0; i < hooks->size(); ++i) {
            const toml::table* t = (*hooks)[i].as_table();
            const std::string ctx = "in [[hook]] #" + std::to_string(i + 1);
            if (!t)
                return ctx + " is not a table";
            if (auto e = check_keys(*t, {"events", "command", "timeout"}, ctx); !e.empty())
                return e;
            HookConfig h;
            for (auto e : {read_strings(*t, "events", h.events, ctx), read_strings(*t, "command", h.command, ctx),
                           read_seconds(*t, "timeout", h.timeout_s, 1, 3600, ctx)})
                if (!e.empty())
                    return e;
            for (const auto& ev : h.events)
                if (!event_names().count(ev))
                    return ctx + ": unknown event '" + ev + "' (see docs/ukeyd.md for the list)";
            if (h.command.empty() || !std::filesystem::path(h.command[0]).is_absolute())
                return ctx + ": command must be a list whose first element is an absolute path, e.g. "
                             "[\"/usr/local/bin/on-key\", \"--notify\"] (it runs without a shell)";
            cfg.hooks.push_back(std::move(h));
        }
    }
    return {};
}

// [renewal] and its [[renewal.ca]] entries (docs/renewal.md).
std::string parse_renewal(const toml::table& root, Config& cfg)
{
    const toml::node* n = root.get("renewal");
    if (!n)
        return {};
    const toml::table* t = n->as_table();
    if (!t)
        return "[renewal] must be a table (" + where(*n) + ")";
    auto& r = cfg.renewal;
    const std::string ctx = "in [renewal]";
    if (auto e = check_keys(*t, {"threshold", "pin_file", "ukey", "timeout", "ca"}, ctx); !e.empty())
        return e;
    auto read_days = [](const toml::table& tt, unsigned& out, const std::string& c) -> std::string {
        const toml::node* d = tt.get("threshold");
        if (!d)
            return {};
        auto v = d->is_integer() ? d->value<int64_t>() : std::nullopt; // see read_value
        if (!v || *v < 1 || *v > 3650)
            return "key 'threshold' " + c + " must be whole days between 1 and 3650 (" + where(*d) + ")";
        out = unsigned(*v);
        return {};
    };
    auto read_path = [](const toml::table& tt, std::string_view key, std::filesystem::path& out,
                        const std::string& c) -> std::string {
        std::string v;
        if (auto e = read_value(tt, key, v, c); !e.empty())
            return e;
        if (!tt.get(key))
            return {};
        if (!std::filesystem::path(v).is_absolute())
            return "key '" + std::string(key) + "' " + c + " must be an absolute path, not '" + v + "'";
        out = v;
        return {};
    };
    for (auto e : {read_days(*t, r.threshold_days, ctx), read_path(*t, "pin_file", r.pin_file, ctx),
                   read_path(*t, "ukey", r.ukey, ctx), read_seconds(*t, "timeout", r.timeout_s, 1, 3600, ctx)})
        if (!e.empty())
            return e;
    const toml::node* cn = t->get("ca");
    if (!cn)
        return {};
    const toml::array* cas = cn->as_array();
    if (!cas)
        return "CAs for renewal are written [[renewal.ca]] (" + where(*cn) + ")";
    std::set<std::string> names;
    for (std::size_t i = 0; i < cas->size(); ++i) {
        const toml::table* ct = (*cas)[i].as_table();
        const std::string c = "in [[renewal.ca]] #" + std::to_string(i + 1);
        if (!ct)
            return c + " is not a table";
        if (auto e = check_keys(*ct, {"name", "url", "fingerprint", "keys", "issuer", "threshold", "mode",
                                      "keep_old", "timeout", "challenge_file"},
                                c);
            !e.empty())
            return e;
        RenewalCa ca;
        std::string mode = "rekey";
        for (auto e : {read_value(*ct, "name", ca.name, c), read_value(*ct, "url", ca.url, c),
                       read_value(*ct, "fingerprint", ca.fingerprint, c), read_strings(*ct, "keys", ca.keys, c),
                       read_value(*ct, "issuer", ca.issuer, c), read_days(*ct, ca.threshold_days, c),
                       read_value(*ct, "mode", mode, c), read_value(*ct, "keep_old", ca.keep_old, c),
                       read_seconds(*ct, "timeout", ca.timeout_s, 1, 3600, c),
                       read_path(*ct, "challenge_file", ca.challenge_file, c)})
            if (!e.empty())
                return e;
        if (!valid_name(ca.name))
            return c + ": name must be 1-32 letters, digits, '-', '_' or '.'";
        if (!names.insert(ca.name).second)
            return c + ": the name '" + ca.name + "' is used twice";
        if (ca.url.rfind("http://", 0) != 0 || ca.url.size() <= 7)
            return c + " ('" + ca.name + "'): url must be an http:// URL of the SCEP service, not '" + ca.url +
                   "' (SCEP protects its messages itself; https is not supported)";
        std::string fp;
        for (char ch : ca.fingerprint)
            if (ch != ':' && ch != ' ')
                fp += char(std::tolower(static_cast<unsigned char>(ch)));
        if (fp.size() != 64 || fp.find_first_not_of("0123456789abcdef") != std::string::npos)
            return c + " ('" + ca.name + "'): fingerprint must be the CA certificate's SHA-256 in hex (64 digits, "
                       "colons allowed), as `openssl x509 -noout -fingerprint -sha256` prints it";
        ca.fingerprint = fp;
        if (mode == "rekey")
            ca.rekey = true;
        else if (mode == "same-key")
            ca.rekey = false;
        else
            return c + " ('" + ca.name + "'): mode must be \"rekey\" or \"same-key\", not '" + mode + "'";
        r.cas.push_back(std::move(ca));
    }
    return {};
}

// ---- [audit]: the audit log (docs/audit.md) ---------------------------------
// Runs after state_dir is known: the folder defaults to <state_dir>/audit.
std::string parse_audit(const toml::table& root, Config& cfg)
{
    auto& a = cfg.audit;
    a.dir = cfg.state_dir / "audit";
    const toml::node* n = root.get("audit");
    if (!n)
        return {};
    const toml::table* t = n->as_table();
    if (!t)
        return "[audit] must be a table (" + where(*n) + ")";
    const std::string ctx = "in [audit]";
    if (auto e = check_keys(*t, {"enabled", "path", "max_bytes", "keep"}, ctx); !e.empty())
        return e;
    std::string path = a.dir.string();
    int64_t max_bytes = int64_t(a.max_bytes), keep = a.keep;
    for (auto e : {read_value(*t, "enabled", a.enabled, ctx), read_value(*t, "path", path, ctx),
                   read_value(*t, "max_bytes", max_bytes, ctx), read_value(*t, "keep", keep, ctx)})
        if (!e.empty())
            return e;
    if (!std::filesystem::path(path).is_absolute())
        return "[audit] path must be an absolute path (a folder), not '" + path + "' (" + where(*t->get("path")) + ")";
    if (max_bytes < int64_t(audit_min_bytes) || uint64_t(max_bytes) > audit_max_bytes)
        return "[audit] max_bytes must be between " + std::to_string(audit_min_bytes) + " and " +
               std::to_string(audit_max_bytes) + " (" + where(*t->get("max_bytes")) + ")";
    if (keep < 0 || keep > int64_t(audit_max_keep))
        return "[audit] keep must be between 0 and " + std::to_string(audit_max_keep) + " (" +
               where(*t->get("keep")) + ")";
    a.dir = path;
    a.max_bytes = uint64_t(max_bytes);
    a.keep = unsigned(keep);
    return {};
}
// ---- end of [audit] ----------------------------------------------------------

} // namespace

bool glob_match(std::string_view p, std::string_view t)
{
    std::size_t pi = 0, ti = 0, star = std::string_view::npos, mark = 0;
    while (ti < t.size()) {
        if (pi < p.size() && (p[pi] == '?' || p[pi] == t[ti])) {
            ++pi;
            ++ti;
        } else if (pi < p.size() && p[pi] == '*') {
            star = pi++;
            mark = ti;
        } else if (star != std::string_view::npos) {
            pi = star + 1;
            ti = ++mark;
        } else {
            return false;
        }
    }
    while (pi < p.size() && p[pi] == '*')
        ++pi;
    return pi == p.size();
}

const RenewalCa* renewal_ca_for(const Config& cfg, const std::string& key_label, const std::string& key_serial,
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

std::filesystem::path config_path()
{
    // secure_getenv: NULL in a setuid/setgid program, whose caller must not
    // choose its config (and so the code it runs).
    const char* env = secure_getenv("UKEY_CONF");
    if (env && *env)
        return env;
    return system_config_path;
}

std::filesystem::path system_module_dir()
{
    return UKEY_SYSTEM_MODULE_DIR;
}

Result<Config> parse_config(std::string_view text, const std::filesystem::path& source)
{
    toml::table root;
    try {
        root = toml::parse(text, source.string());
    } catch (const toml::parse_error& e) {
        return config_error(source, "line " + std::to_string(e.source().begin.line) + ": " +
                                        std::string(e.description()));
    }

    Config cfg;
    cfg.source = source;
    if (auto e = check_keys(root, {"state_dir", "log", "pin", "backend", "daemon", "expiry", "hook", "renewal", "audit"}, "at top level"); !e.empty())
        return config_error(source, e);

    std::string state_dir = "~/.local/state/ukey";
    if (auto e = read_value(root, "state_dir", state_dir, "at top level"); !e.empty())
        return config_error(source, e);
    if (state_dir.rfind("~/", 0) == 0) {
        // The user's own home from the password database, not $HOME: the
        // state of a setuid or sudo'ed process must not follow the caller's
        // environment.
        const struct passwd* pw = getpwuid(geteuid());
        if (!pw || !pw->pw_dir || !*pw->pw_dir)
            return config_error(source, "state_dir starts with ~/ but this user has no home folder");
        state_dir = std::string(pw->pw_dir) + state_dir.substr(1);
    }
    cfg.state_dir = state_dir;
    if (!cfg.state_dir.is_absolute())
        return config_error(source, "state_dir must be an absolute path, not '" + state_dir + "'");

    if (const toml::node* n = root.get("log")) {
        const toml::table* t = n->as_table();
        if (!t)
            return config_error(source, "[log] must be a table (" + where(*n) + ")");
        const std::string ctx = "in [log]";
        if (auto e = check_keys(*t, {"level", "stderr", "syslog"}, ctx); !e.empty())
            return config_error(source, e);
        std::string level = "warning";
        if (auto e = read_value(*t, "level", level, ctx); !e.empty())
            return config_error(source, e);
        if (!log::parse_level(level, cfg.log.level))
            return config_error(source, "[log] level must be error, warning, info or debug, not '" +
                                            level + "'");
        if (auto e = read_value(*t, "stderr", cfg.log.to_stderr, ctx); !e.empty())
            return config_error(source, e);
        if (auto e = read_value(*t, "syslog", cfg.log.to_syslog, ctx); !e.empty())
            return config_error(source, e);
    }

    if (const toml::node* n = root.get("pin")) {
        const toml::table* t = n->as_table();
        if (!t)
            return config_error(source, "[pin] must be a table (" + where(*n) + ")");
        const std::string ctx = "in [pin]";
        if (auto e = check_keys(*t, {"user_max_tries", "so_max_tries", "reject_trivial", "min_length"}, ctx);
            !e.empty())
            return config_error(source, e);
        int64_t user = 6, so = 6, min_length = 0;
        for (auto e : {read_value(*t, "user_max_tries", user, ctx), read_value(*t, "so_max_tries", so, ctx),
                       read_value(*t, "min_length", min_length, ctx),
                       read_value(*t, "reject_trivial", cfg.pin_rules.reject_trivial, ctx)})
            if (!e.empty())
                return config_error(source, e);
        for (int64_t v : {user, so})
            if (v < min_tries || v > max_tries)
                return config_error(source, "[pin] try limits must be between 1 and 15");
        if (min_length < 0 || min_length > 64)
            return config_error(source, "[pin] min_length must be between 0 and 64");
        cfg.pin_defaults = PinCounts{unsigned(user), unsigned(user), unsigned(so), unsigned(so), false};
        cfg.pin_rules.min_length = unsigned(min_length);
    }

    const toml::node* bn = root.get("backend");
    const toml::array* backends = bn ? bn->as_array() : nullptr;
    if (!backends || backends->empty())
        return config_error(source, "no [[backend]] is configured: name at least one PKCS#11 module");
    if (backends->size() > max_backends)
        return config_error(source, "at most " + std::to_string(max_backends) + " [[backend]] entries are supported");

    std::set<std::string> names;
    for (std::size_t i = 0; i < backends->size(); ++i) {
        const toml::table* t = (*backends)[i].as_table();
        const std::string ctx = "in [[backend]] #" + std::to_string(i + 1);
        if (!t)
            return config_error(source, ctx + " is not a table");
        if (auto e = check_keys(*t, {"name", "module", "pin_counter", "optional", "fixes"}, ctx); !e.empty())
            return config_error(source, e);
        BackendConfig b;
        std::string counter = "ukey";
        for (auto e : {read_value(*t, "name", b.name, ctx), read_value(*t, "module", b.module, ctx),
                       read_value(*t, "pin_counter", counter, ctx),
                       read_value(*t, "optional", b.optional, ctx), read_value(*t, "fixes", b.fixes, ctx)})
            if (!e.empty())
                return config_error(source, e);
        if (!valid_name(b.name))
            return config_error(source, ctx + ": name must be 1-32 letters, digits, '-', '_' or '.'");
        if (!names.insert(b.name).second)
            return config_error(source, ctx + ": the name '" + b.name + "' is used twice");
        if (b.module.empty())
            return config_error(source, ctx + " ('" + b.name + "'): module is missing");
        // Never relative to the current folder (`cd somewhere && ukey list`
        // would load somewhere's library): a bare name is looked up in the
        // system's PKCS#11 module folder, as p11-kit does.
        if (b.module.find('/') == std::string::npos)
            b.module = (system_module_dir() / b.module).string();
        else if (b.module[0] != '/')
            return config_error(source, ctx + " ('" + b.name + "'): module must be an absolute path, or a bare file "
                                              "name in " + system_module_dir().string() + ", not '" + b.module + "'");
        if (counter == "ukey")
            b.pin_counter = PinCounter::ukey;
        else if (counter == "token")
            b.pin_counter = PinCounter::token;
        else
            return config_error(source, ctx + " ('" + b.name +
                                            "'): pin_counter must be \"ukey\" or \"token\", not '" +
                                            counter + "'");
        cfg.backends.push_back(std::move(b));
    }
    if (auto e = parse_daemon(root, cfg); !e.empty())
        return config_error(source, e);
    if (auto e = parse_renewal(root, cfg); !e.empty())
        return config_error(source, e);
    if (auto e = parse_audit(root, cfg); !e.empty())
        return config_error(source, e);
    return cfg;
}

Result<std::string> read_config_text(const std::filesystem::path& path)
{
    // The config names the modules ukey loads: a file others can write is
    // refused (or warned about), like sudoers.
    auto file = trusted_file(path, "config file");
    if (!file) {
        if (is_refusal(file.error()))
            return file.error();
        return Error{CKR_FUNCTION_FAILED,
                     "cannot read the config file " + file.error().message +
                         (privileged_process() ? " (UKEY_CONF is ignored in a setuid or setgid program)"
                                               : ": create it (see docs/config.md) or point UKEY_CONF at one")};
    }
    std::ifstream in(*file);
    if (!in)
        return Error{CKR_FUNCTION_FAILED, "cannot read the config file " + path.string() + ": " +
                                              std::strerror(errno)};
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

Result<Config> load_config(const std::filesystem::path& path)
{
    auto text = read_config_text(path);
    if (!text)
        return text.error();
    return parse_config(*text, path);
}

} // namespace ukey
