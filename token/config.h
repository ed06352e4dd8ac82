// The ukey configuration file (TOML), as documented in docs/config.md.
#pragma once

#include "log.h"
#include "pin_rules.h"
#include "result.h"

#include <filesystem>
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
    std::string module; // path of the backend PKCS#11 module
    PinCounter pin_counter = PinCounter::ukey;
    bool optional = false; // if true, a backend that fails to load is skipped, not fatal
};

struct Config {
    std::filesystem::path source; // the file it was read from
    // Per user by default: the PIN counters of a user's Keys live in his own
    // folder (docs/pin-policy.md, threat model). "~/" is the user's home.
    std::filesystem::path state_dir;
    log::Settings log;
    PinCounts pin_defaults; // limits for Keys ukey counts for, until set per Key
    PinRules pin_rules;
    std::vector<BackendConfig> backends;
};

// The most backends one module aggregates: object handles carry the backend
// index in their low bits.
inline constexpr std::size_t max_backends = 16;

// $UKEY_CONF, else /etc/ukey/ukey.conf.
std::filesystem::path config_path();

Result<Config> parse_config(std::string_view text, const std::filesystem::path& source);
Result<Config> load_config(const std::filesystem::path& path);

} // namespace ukey
