// The ukey configuration file (TOML), as documented in docs/config.md.
#pragma once

#include "token/audit_settings.h"
#include "token/log.h"
#include "token/pin_rules.h"
#include "token/result.h"

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
    // Absolute path of the backend PKCS#11 module (a bare name in the config
    // is resolved in system_module_dir()).
    std::string module;
    PinCounter pin_counter = PinCounter::ukey;
    bool optional = false; // if true, a backend that fails to load is skipped, not fatal
    bool fixes = true;     // correct this backend's known deviations (docs/backend-fixes.md)
};

// A command ukeyd runs on chosen events (docs/ukeyd.md, "Hooks"): argv as
// written, no shell; details in UKEY_* environment variables.
struct HookConfig {
    std::vector<std::string> events;  // event names; empty = every event
    std::vector<std::string> command; // argv[0] is an absolute path
    double timeout_s = 30;            // then SIGTERM, 2 s later SIGKILL
};

// ukeyd: the management daemon (docs/ukeyd.md).
struct DaemonConfig {
    std::filesystem::path socket = "/run/ukey/ukeyd.sock";
    // Who may use the socket (SO_PEERCRED); both empty = every local user.
    // root and the daemon's own user are always allowed.
    std::vector<std::string> allow_users;
    std::vector<std::string> allow_groups;
    bool pcsc = true;              // watch PC/SC readers through pcscd
    double rescan_interval_s = 10; // fallback backend rescan; 0 = only after PC/SC changes
    double scan_timeout_s = 20;    // a scan taking longer is killed
    // Days before notAfter at which cert-expiring fires, once per crossing.
    std::vector<unsigned> expiry_thresholds{28, 7, 3, 2, 1};
    double expiry_check_interval_s = 86400; // re-check of present Keys
};

// One CA that renews certificates over SCEP (docs/renewal.md), and which
// Keys and certificates it serves.
struct RenewalCa {
    std::string name;        // names it in logs and on `ukey renew --ca-name`
    std::string url;         // http://host[:port]/path of the SCEP service
    std::string fingerprint; // SHA-256 of the CA certificate, lowercase hex (64 digits)
    // Which Keys: globs (*, ?) on the Key's label or serial; empty = every Key.
    std::vector<std::string> keys;
    // Which certificates: a substring of the issuer (RFC 2253); empty = any.
    std::string issuer;
    unsigned threshold_days = 0; // 0: the [renewal] default
    bool rekey = true;           // a new key pair (else the same key)
    bool keep_old = false;       // keep superseded objects, relabelled
    double timeout_s = 0;        // 0: the [renewal] default
    // The CA's challenge password, if it wants one for renewals too
    // (scepserver does): like pin_file, root's and 0600 for --unattended.
    std::filesystem::path challenge_file;
};

// [renewal]: automatic renewal by ukeyd (docs/renewal.md).
struct RenewalConfig {
    unsigned threshold_days = 14;
    // The user PIN for unattended renewals: root-owned, mode 0600 or stricter,
    // checked by `ukey renew --unattended` before it is read. Empty: none.
    std::filesystem::path pin_file;
    // The ukey binary ukeyd runs; empty: `ukey` next to ukeyd's own binary.
    std::filesystem::path ukey;
    double timeout_s = 120; // SCEP: total time for one renewal's CA exchanges
    std::vector<RenewalCa> cas;
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
    DaemonConfig daemon;
    std::vector<HookConfig> hooks;
    RenewalConfig renewal;
    AuditSettings audit; // [audit]: dir defaults to <state_dir>/audit
};

// The first [[renewal.ca]] serving a Key (label, serial) and a certificate
// issuer; nullptr if none.
const RenewalCa* renewal_ca_for(const Config& cfg, const std::string& key_label, const std::string& key_serial,
                                const std::string& issuer);
// A glob with * and ? (no classes).
bool glob_match(std::string_view pattern, std::string_view text);

// The most backends one module aggregates: object handles carry the backend
// index in their low bits.
inline constexpr std::size_t max_backends = 16;

inline constexpr const char* system_config_path = "/etc/ukey/ukey.conf";
// $UKEY_CONF, else /etc/ukey/ukey.conf; always the latter in a setuid or
// setgid program (secure_getenv).
std::filesystem::path config_path();
// Where bare module names are looked up: p11-kit's p11_module_path, e.g.
// /usr/lib/x86_64-linux-gnu/pkcs11.
std::filesystem::path system_module_dir();

Result<Config> parse_config(std::string_view text, const std::filesystem::path& source);
// The text of a config file, once trusted_file() accepts it (file_trust.h).
Result<std::string> read_config_text(const std::filesystem::path& path);
Result<Config> load_config(const std::filesystem::path& path);

} // namespace ukey
