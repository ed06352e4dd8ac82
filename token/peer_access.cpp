#include "token/peer_access.h"

#include "token/config.h"
#include "token/log.h"

#include <mutex>

#include <grp.h>
#include <pwd.h>

namespace ukey {

namespace {
std::mutex peer_mu;
std::optional<Peer> peer;
} // namespace

bool set_served_peer(const Peer& p)
{
    std::lock_guard<std::mutex> g(peer_mu);
    if (peer && (peer->uid != p.uid || peer->gid != p.gid || peer->pid != p.pid))
        return false;
    peer = p;
    return true;
}

std::optional<Peer> served_peer()
{
    std::lock_guard<std::mutex> g(peer_mu);
    return peer;
}

std::optional<unsigned long> numeric_id(const std::string& s)
{
    if (s.empty() || s.size() > 10)
        return std::nullopt;
    unsigned long v = 0;
    for (char c : s) {
        if (c < '0' || c > '9')
            return std::nullopt;
        v = v * 10 + unsigned(c - '0');
    }
    // (uid_t)-1 means "no change" to setresuid and friends: never an id.
    if (v >= 0xffffffffUL)
        return std::nullopt;
    return v;
}

AccessList::AccessList(const std::vector<std::string>& users, const std::vector<std::string>& groups)
{
    for (const auto& u : users) {
        if (const passwd* pw = getpwnam(u.c_str()))
            uids_.insert(pw->pw_uid);
        else if (auto n = numeric_id(u))
            uids_.insert(uid_t(*n));
        else
            unknown_.push_back("user '" + u + "'");
    }
    for (const auto& g : groups) {
        if (const group* gr = getgrnam(g.c_str()))
            gids_.insert(gr->gr_gid);
        else if (auto n = numeric_id(g))
            gids_.insert(gid_t(*n));
        else
            unknown_.push_back("group '" + g + "'");
    }
}

bool AccessList::allows(uid_t uid, gid_t gid) const
{
    if (uids_.count(uid) || gids_.count(gid))
        return true;
    if (gids_.empty())
        return false;
    const passwd* pw = getpwuid(uid);
    if (!pw)
        return false;
    int n = 64;
    std::vector<gid_t> gs(64);
    if (getgrouplist(pw->pw_name, pw->pw_gid, gs.data(), &n) < 0) {
        gs.resize(size_t(n));
        if (getgrouplist(pw->pw_name, pw->pw_gid, gs.data(), &n) < 0)
            return false;
    }
    for (int i = 0; i < n; ++i)
        if (gids_.count(gs[size_t(i)]))
            return true;
    return false;
}

Result<void> restrict_to_served_peer(Config& cfg)
{
    const auto p = served_peer();
    if (!p)
        return {};
    if (auto twice = backends_sharing_a_module(cfg); !twice.empty())
        return Error{CKR_GENERAL_ERROR, "service mode refuses this config: backends " + twice +
                                            ", which would count each Key's PIN tries twice; keep one"};
    // Admins see every Key: they initialise and unlock them.
    if (is_admin(cfg, *p))
        return {};
    std::vector<BackendConfig> kept;
    for (auto& b : cfg.backends) {
        const AccessList list(b.users, b.groups);
        for (const auto& u : list.unknown())
            log::warning("[[backend]] '" + b.name + "' names " + u + ", unknown here: it is given no access");
        if (!(b.users.empty() && b.groups.empty()) && !list.allows(p->uid, p->gid))
            continue;
        kept.push_back(std::move(b));
    }
    if (kept.empty())
        log::info("uid " + std::to_string(p->uid) + " may use no backend: it is served no Keys");
    cfg.backends = std::move(kept);
    return {};
}

bool is_admin(const Config& cfg, const Peer& p)
{
    return p.uid == 0 || (!cfg.service_admin_groups.empty() && AccessList({}, cfg.service_admin_groups).allows(p.uid, p.gid));
}

} // namespace ukey
