// Who a process serves, and who may use what (docs/service-mode.md).
//
// In service mode ukeyd serves libukey-pkcs11.so to each connecting
// application in a child process of its own. That child tells the module
// whom it serves (served_peer) before C_Initialize; the module then loads
// only the backends the peer may use (BackendConfig::users/groups), and
// refuses SO operations to a peer that is not an admin. In a process that
// serves no peer (personal mode) nothing here applies.
#pragma once

#include "token/result.h"

#include <sys/types.h>

#include <optional>
#include <set>
#include <string>
#include <vector>

namespace ukey {

struct Peer {
    uid_t uid = 0;
    gid_t gid = 0;  // primary group, as SO_PEERCRED tells it
    pid_t pid = 0;  // for the log and the audit record
};

// Set once, before C_Initialize; false if another peer was set already.
bool set_served_peer(const Peer& p);
std::optional<Peer> served_peer();

// A list of users and groups, as the config writes them: names, or
// numbers for ids that have no name here. Names are resolved when the list
// is built; one that is not known here is kept in unknown() for a warning.
class AccessList {
public:
    AccessList() = default;
    AccessList(const std::vector<std::string>& users, const std::vector<std::string>& groups);

    bool empty() const { return uids_.empty() && gids_.empty() && unknown_.empty(); }
    // uid is listed, or gid, or one of uid's supplementary groups (from the
    // user database: SO_PEERCRED tells only the primary group).
    bool allows(uid_t uid, gid_t gid) const;
    const std::vector<std::string>& unknown() const { return unknown_; }

private:
    std::set<uid_t> uids_;
    std::set<gid_t> gids_;
    std::vector<std::string> unknown_;
};

struct Config;

// In a process that serves a peer: refuses a config with two backends on
// one module (backends_sharing_a_module), then keeps only the backends the
// peer may use (all of them for an admin); the others are not loaded, so
// their Keys are invisible.
// Nothing happens in a process that serves no peer.
Result<void> restrict_to_served_peer(Config& cfg);
// Root, or a member of [service] admin_groups.
bool is_admin(const Config& cfg, const Peer& p);

// A user or group id written as a decimal number (no sign, no spaces).
std::optional<unsigned long> numeric_id(const std::string& s);

} // namespace ukey
