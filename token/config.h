// The ukey configuration file (TOML), as documented in docs/config.md.
#pragma once

#include "token/audit_settings.h"
#include "token/log.h"
#include "token/pin_rules.h"
#include "token/result.h"

#include <array>
#include <chrono>
#include <filesystem>
#include <string_view>
#include <string>
#include <vector>

namespace ukey {

// Who counts wrong PIN tries for a backend's Keys.
enum class PinCounter {
    ukey,  // ukey keeps the count and the lock (the backend never locks, e.g. SoftHSM2)
    token, // the token counts itself; ukey passes its flags through
};

struct BackendConfig {
    std::string name;   // stable name: part of every slot ID and Key identity
    // Absolute path of the backend PKCS#11 module (a bare name in the config
    // is resolved in system_module_dir()).
    std::string module;
    PinCounter pin_counter = PinCounter::ukey;
    bool optional = false; // if true, a backend that fails to load is skipped, not fatal
    bool fixes = true;     // correct this backend's known deviations (docs/backend-fixes.md)
    // Its Keys' slots say CKF_REMOVABLE_DEVICE whatever the module says:
    // browsers treat a fixed token as part of the computer (SoftHSM2 as
    // Debian builds it reports fixed slots). Off for a built-in token.
    bool removable = true;
    // Service mode (docs/service-mode.md): who may use this backend's Keys
    // through ukeyd; names or numeric ids. Both empty = every user.
    std::vector<std::string> users;
    std::vector<std::string> groups;
};

inline constexpr const char* default_daemon_socket = "/run/ukey/ukeyd.sock";

// Top-level keys of the tools' sections (tools/common/tool_config.h): the
// module accepts them unread (of [daemon] it reads the socket, of [service]
// the admin groups), and the tools
// check them as strictly as the module checks its own.
inline constexpr std::array<std::string_view, 5> tool_sections{"daemon", "expiry", "hook", "renewal", "service"};

struct Config {
    std::filesystem::path source; // the file it was read from
    // Per user by default: the PIN counters of a user's Keys live in his own
    // folder (docs/pin-policy.md, threat model). "~/" is the user's home.
    std::filesystem::path state_dir;
    log::Settings log;
    PinCounts pin_defaults; // limits for Keys ukey counts for, until set per Key
    PinRules pin_rules;
    // [pin] attempt_wait: how long a login waits for another process's
    // attempt on the same Key before it gives up naming that process.
    std::chrono::seconds pin_attempt_wait{30};
    std::vector<BackendConfig> backends;
    // [daemon] socket: where ukeyd listens, and C_WaitForSlotEvent subscribes.
    std::filesystem::path daemon_socket = default_daemon_socket;
    AuditSettings audit; // [audit]: dir defaults to <state_dir>/audit
    // [service] admin_groups: besides root, who may use SO functions
    // (C_Login as SO, C_InitToken) through ukeyd in service mode.
    std::vector<std::string> service_admin_groups;
};

// Two backends on one module (the same file, however named) would count
// each Key's tries twice; service mode refuses such a config. The first
// such pair, as "'a' and 'b' both load /path", or empty.
std::string backends_sharing_a_module(const Config& cfg);

// The most backends one module aggregates: object handles carry the backend
// index in their low bits.
inline constexpr std::size_t max_backends = 16;

// The configuration's folder: UKEY_CONFIG_DIR of the build (the top
// CMakeLists.txt), where `cmake --install` puts ukey.conf.
#ifndef UKEY_CONFIG_DIR
#define UKEY_CONFIG_DIR "/etc/ukey"
#endif
inline constexpr const char* system_config_path = UKEY_CONFIG_DIR "/ukey.conf";
// $UKEY_CONF, else system_config_path; always the latter in a setuid or
// setgid program (secure_getenv).
std::filesystem::path config_path();
// Where bare module names are looked up: p11-kit's p11_module_path, e.g.
// /usr/lib/x86_64-linux-gnu/pkcs11.
std::filesystem::path system_module_dir();

Result<Config> parse_config(std::string_view text, const std::filesystem::path& source);
// The text of a config file, once trusted_file() accepts it (file_trust.h).
Result<std::string> read_config_text(const std::filesystem::path& path);
Result<Config> load_config(const std::filesystem::path& path);

// Reads the file at `path` as read_config_text does and parses it with
// `parse` (parse_config, or the tools' parse_tool_config).
template <class C>
Result<C> load_with(const std::filesystem::path& path,
                    Result<C> (*parse)(std::string_view, const std::filesystem::path&))
{
    auto text = read_config_text(path);
    if (!text)
        return text.error();
    return parse(*text, path);
}

} // namespace ukey
