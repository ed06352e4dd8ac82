// The daemon's answers on the socket: `status` and `list` (docs/ukeyd.md,
// "The socket"); `subscribe` is the server's own.
#include "daemon.h"

#include "clock.h"

#include <unistd.h>

namespace ukey::daemon {

using nlohmann::json;

json Daemon::status() const
{
    json readers = json::array();
    for (const auto& [name, r] : keys_.readers()) {
        json j{{"name", name}, {"card", r.card}};
        if (r.card)
            j["atr"] = r.atr;
        if (r.unusable)
            j["unusable"] = true;
        readers.push_back(j);
    }
    json pcsc{{"state", pcsc_state_}, {"readers", readers}};
    if (!pcsc_error_.is_null())
        pcsc["error"] = pcsc_error_;
    json scan{{"count", scans_},
              {"running", scanner_.running()},
              {"interval_s", cfg_.daemon.rescan_interval_s},
              {"backends_waiting_for_events", waiters_->waiting()}};
    if (last_scan_ms_) {
        scan["last"] = iso_ms(last_scan_ms_);
        scan["last_duration_ms"] = last_scan_duration_ms_;
    }
    if (!last_scan_error_.empty())
        scan["error"] = last_scan_error_;
    return json{{"version", UKEY_VERSION},
                {"pid", getpid()},
                {"started", iso_ms(started_ms_)},
                {"uptime_s", (now_ms() - started_ms_) / 1000},
                {"config", config_file_.string()},
                {"socket", cfg_.daemon_socket.string()},
                {"pcsc", pcsc},
                {"scan", scan},
                {"slots", keys_.slots()},
                {"keys", keys_.published_list()},
                {"clients", server_->clients()},
                {"subscribers", server_->subscribers()},
                {"hooks", {{"configured", cfg_.hooks.size()}, {"running", hooks_.running()}, {"queued", hooks_.queued()}}},
                {"renewals_running", renewals_.running_keys()},
                {"expiry", {{"thresholds", cfg_.daemon.expiry_thresholds},
                            {"check_interval_s", cfg_.daemon.expiry_check_interval_s}}}};
}

bool Daemon::may_see(uid_t uid, gid_t gid, const json& key) const
{
    if (!cfg_.service.enabled || uid == 0 || uid == geteuid() || (!admins_.empty() && admins_.allows(uid, gid)))
        return true;
    const json backend = key.is_object() ? key.value("backend", json()) : json();
    if (!backend.is_string())
        return true; // a reader or a card: no backend's Key
    const auto it = backend_access_.find(backend.get<std::string>());
    return it == backend_access_.end() || it->second.allows(uid, gid);
}

json Daemon::visible_to(uid_t uid, gid_t gid, const json& list) const
{
    json out = json::array();
    for (const auto& k : list)
        if (may_see(uid, gid, k))
            out.push_back(k);
    return out;
}

json Daemon::answer(const json& req, uid_t uid, gid_t gid)
{
    const json r = req.value("request", json());
    if (r == "status") {
        json st = status();
        st["keys"] = visible_to(uid, gid, st["keys"]);
        st["slots"] = visible_to(uid, gid, st["slots"]);
        return json{{"ok", true}, {"status", st}};
    }
    if (r == "list")
        return json{{"ok", true}, {"keys", visible_to(uid, gid, keys_.published_list())}};
    return error_reply(r.is_string() ? "unknown request '" + r.get<std::string>() + "': status, list or subscribe"
                                     : "a request names \"request\": status, list or subscribe");
}

} // namespace ukey::daemon
