// The config sections of ukey's tools (ukeyd, `ukey renew`): [daemon],
// [expiry], [[hook]] and [renewal], read from the same file as the module's
// sections and as strictly (unknown keys and wrong types are errors with the
// file and the line). The module skips these sections (token/config.h,
// tool_sections); docs/config.md, docs/ukeyd.md and docs/renewal.md say
// what they mean.
#pragma once

#include "token/config.h"

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ukey {

// A command ukeyd runs on chosen events (docs/ukeyd.md, "Hooks"): argv as
// written, no shell; details in UKEY_* environment variables.
struct HookConfig {
    std::vector<std::string> events;  // event names; empty = every event
    std::vector<std::string> command; // argv[0] is an absolute path
    double timeout_s = 30;            // then SIGTERM, 2 s later SIGKILL
};

// ukeyd: the management daemon (docs/ukeyd.md). Its socket is the module's
// too: Config::daemon_socket.
struct DaemonConfig {
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

// [service]: ukeyd serving Keys to applications over p11-kit's RPC
// (docs/service-mode.md). admin_groups is the module's
// (Config::service_admin_groups).
struct ServiceConfig {
    bool enabled = false;
    std::filesystem::path socket = "/run/ukey/pkcs11";
    // Whom the serving children run as when ukeyd runs as root: the owner
    // of state_dir and of soft Keys' token stores. A name, or "uid" /
    // "uid:gid" for an id with no name here. Not root.
    std::string user = "ukey";
    // Serving children at once, per user (root's are not limited).
    unsigned max_per_user = 32;
};

// One CA that renews certificates over SCEP (docs/renewal.md), and which
// Keys and certificates it serves.
struct RenewalCa {
    std::string name;        // names it in logs and on `ukey renew --ca-name`
    std::string url;         // http://host[:port]/path of the SCEP service
    std::string fingerprint; // SHA-256 of the CA certificate, lowercase hex (64 digits)
    // Which Keys: globs (fnmatch(3): *, ?, [...]) on the Key's label or
    // serial; empty = every Key.
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

// The whole file as the tools see it: the module's sections and theirs.
struct ToolConfig : Config {
    DaemonConfig daemon;
    std::vector<HookConfig> hooks;
    RenewalConfig renewal;
    ServiceConfig service;
};

// The first [[renewal.ca]] serving a Key (label, serial) and a certificate
// issuer; nullptr if none.
const RenewalCa* renewal_ca_for(const ToolConfig& cfg, const std::string& key_label, const std::string& key_serial,
                                const std::string& issuer);
// A Key glob of [[renewal.ca]] keys (fnmatch(3), no flags: * also matches '/').
bool glob_match(const std::string& pattern, const std::string& text);

// [service] user as uid and gid: a name from the user database, or "uid"
// / "uid:gid"; nullopt if neither.
struct UserIds {
    unsigned long uid, gid;
};
std::optional<UserIds> service_user_ids(const std::string& user);

// The socket a program run by the current user reaches Keys through in
// service mode: [service] socket when the service is enabled and this is
// not the service user (who, like an admin, uses the module itself);
// nullopt otherwise.
std::optional<std::filesystem::path> service_socket_for_me(const ToolConfig& cfg);

Result<ToolConfig> parse_tool_config(std::string_view text, const std::filesystem::path& source);
Result<ToolConfig> load_tool_config(const std::filesystem::path& path);

} // namespace ukey
