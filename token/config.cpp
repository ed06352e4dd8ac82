#include "token/config.h"

#include "token/file_trust.h"
#include "token/toml_read.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <set>
#include <sstream>

#include <pwd.h>
#include <unistd.h>

namespace ukey {
using namespace toml_read;

namespace {

// [daemon] socket, where ukeyd listens and C_WaitForSlotEvent subscribes;
// the rest of [daemon] is the tools' (tools/common/tool_config.*), which
// also reject its unknown keys.
Result<void> read_daemon_socket(const toml::table& root, Config& cfg)
{
    return with_section(root, "daemon", [&](const toml::table* t) -> Result<void> {
        std::string socket = cfg.daemon_socket.string();
        if (auto e = read_value(*t, "socket", socket, "in [daemon]"); !e)
            return e;
        cfg.daemon_socket = socket;
        if (!cfg.daemon_socket.is_absolute() || socket.size() >= 108)
            return problem("[daemon] socket must be an absolute path shorter than 108 bytes, not '" + socket + "'");
        return {};
    });
}

// [service] admin_groups; the rest of [service] is ukeyd's.
Result<void> read_service_admins(const toml::table& root, Config& cfg)
{
    return with_section(root, "service", [&](const toml::table* t) -> Result<void> {
        return read_strings(*t, "admin_groups", cfg.service_admin_groups, "in [service]");
    });
}

// ---- [audit]: the audit log (docs/audit.md) ---------------------------------
// Runs after state_dir is known: the folder defaults to <state_dir>/audit.
Result<void> parse_audit(const toml::table& root, Config& cfg)
{
    auto& a = cfg.audit;
    a.dir = cfg.state_dir / "audit";
    return with_section(root, "audit", [&](const toml::table* t) -> Result<void> {
        const std::string ctx = "in [audit]";
        if (auto e = check_keys(*t, {"enabled", "path", "max_bytes", "keep"}, ctx); !e)
            return e;
        std::string path = a.dir.string();
        int64_t max_bytes = int64_t(a.max_bytes), keep = a.keep;
        for (auto e : {read_value(*t, "enabled", a.enabled, ctx), read_value(*t, "path", path, ctx),
                       read_value(*t, "max_bytes", max_bytes, ctx), read_value(*t, "keep", keep, ctx)})
            if (!e)
                return e;
        if (!std::filesystem::path(path).is_absolute())
            return problem("[audit] path must be an absolute path (a folder), not '" + path + "' (" + where(*t->get("path")) + ")");
        if (max_bytes < int64_t(audit_min_bytes) || uint64_t(max_bytes) > audit_max_bytes)
            return problem("[audit] max_bytes must be between " + std::to_string(audit_min_bytes) + " and " +
                   std::to_string(audit_max_bytes) + " (" + where(*t->get("max_bytes")) + ")");
        if (keep < 0 || keep > int64_t(audit_max_keep))
            return problem("[audit] keep must be between 0 and " + std::to_string(audit_max_keep) + " (" +
                   where(*t->get("keep")) + ")");
        a.dir = path;
        a.max_bytes = uint64_t(max_bytes);
        a.keep = unsigned(keep);
        return {};
    });
}
// ---- end of [audit] ----------------------------------------------------------

} // namespace


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
    auto parsed = toml_read::parse(text, source);
    if (!parsed)
        return config_error(source, parsed.error().message);
    const toml::table& root = *parsed;

    Config cfg;
    cfg.source = source;
    for (const auto& [k, v] : root) {
        const bool tools = std::find(tool_sections.begin(), tool_sections.end(), k.str()) != tool_sections.end();
        if (!tools && k.str() != "state_dir" && k.str() != "log" && k.str() != "pin" && k.str() != "backend" &&
            k.str() != "audit")
            return config_error(source, "unknown key '" + std::string(k.str()) + "' at top level (" + where(v) + ")");
    }

    std::string state_dir = "~/.local/state/ukey";
    if (auto e = read_value(root, "state_dir", state_dir, "at top level"); !e)
        return config_error(source, e.error().message);
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

    auto log_section = section(root, "log");
    if (!log_section)
        return config_error(source, log_section.error().message);
    if (const toml::table* t = *log_section) {
        const std::string ctx = "in [log]";
        if (auto e = check_keys(*t, {"level", "stderr", "syslog"}, ctx); !e)
            return config_error(source, e.error().message);
        std::string level = "warning";
        if (auto e = read_value(*t, "level", level, ctx); !e)
            return config_error(source, e.error().message);
        if (!log::parse_level(level, cfg.log.level))
            return config_error(source, "[log] level must be error, warning, info or debug, not '" +
                                            level + "'");
        if (auto e = read_value(*t, "stderr", cfg.log.to_stderr, ctx); !e)
            return config_error(source, e.error().message);
        if (auto e = read_value(*t, "syslog", cfg.log.to_syslog, ctx); !e)
            return config_error(source, e.error().message);
    }

    auto pin_section = section(root, "pin");
    if (!pin_section)
        return config_error(source, pin_section.error().message);
    if (const toml::table* t = *pin_section) {
        const std::string ctx = "in [pin]";
        if (auto e = check_keys(*t, {"user_max_tries", "so_max_tries", "reject_trivial", "min_length", "attempt_wait"},
                                ctx);
            !e)
            return config_error(source, e.error().message);
        int64_t user = 6, so = 6, min_length = 0, attempt_wait = cfg.pin_attempt_wait.count();
        for (auto e : {read_value(*t, "user_max_tries", user, ctx), read_value(*t, "so_max_tries", so, ctx),
                       read_value(*t, "min_length", min_length, ctx),
                       read_value(*t, "attempt_wait", attempt_wait, ctx),
                       read_value(*t, "reject_trivial", cfg.pin_rules.reject_trivial, ctx)})
            if (!e)
                return config_error(source, e.error().message);
        for (int64_t v : {user, so})
            if (v < min_tries || v > max_tries)
                return config_error(source, "[pin] try limits must be between 1 and 15");
        if (min_length < 0 || min_length > 64)
            return config_error(source, "[pin] min_length must be between 0 and 64");
        if (attempt_wait < 1 || attempt_wait > 600)
            return config_error(source, "[pin] attempt_wait must be between 1 and 600 seconds");
        cfg.pin_attempt_wait = std::chrono::seconds(attempt_wait);
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
        if (auto e = check_keys(*t, {"name", "module", "pin_counter", "optional", "fixes", "removable", "users", "groups"},
                                ctx);
            !e)
            return config_error(source, e.error().message);
        BackendConfig b;
        std::string counter = "ukey";
        for (auto e : {read_value(*t, "name", b.name, ctx), read_value(*t, "module", b.module, ctx),
                       read_value(*t, "pin_counter", counter, ctx),
                       read_value(*t, "optional", b.optional, ctx), read_value(*t, "fixes", b.fixes, ctx),
                       read_value(*t, "removable", b.removable, ctx), read_strings(*t, "users", b.users, ctx),
                       read_strings(*t, "groups", b.groups, ctx)})
            if (!e)
                return config_error(source, e.error().message);
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
    if (auto e = read_daemon_socket(root, cfg); !e)
        return config_error(source, e.error().message);
    if (auto e = parse_audit(root, cfg); !e)
        return config_error(source, e.error().message);
    if (auto e = read_service_admins(root, cfg); !e)
        return config_error(source, e.error().message);
    return cfg;
}

std::string backends_sharing_a_module(const Config& cfg)
{
    for (std::size_t i = 0; i < cfg.backends.size(); ++i)
        for (std::size_t j = i + 1; j < cfg.backends.size(); ++j) {
            const auto& a = cfg.backends[i];
            const auto& b = cfg.backends[j];
            std::error_code e1, e2;
            const auto ra = std::filesystem::canonical(a.module, e1);
            const auto rb = std::filesystem::canonical(b.module, e2);
            if (a.module == b.module || (!e1 && !e2 && ra == rb))
                return "'" + a.name + "' and '" + b.name + "' both load " + (e1 ? a.module : ra.string());
        }
    return {};
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
                                               : ": create it (see ukey.conf(5)) or point UKEY_CONF at one")};
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
    return load_with(path, parse_config);
}

} // namespace ukey
