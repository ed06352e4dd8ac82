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

json Daemon::answer(const json& req)
{
    const json r = req.value("request", json());
    if (r == "status")
        return json{{"ok", true}, {"status", status()}};
    if (r == "list")
        return json{{"ok", true}, {"keys", keys_.published_list()}};
    return error_reply(r.is_string() ? "unknown request '" + r.get<std::string>() + "': status, list or subscribe"
                                     : "a request names \"request\": status, list or subscribe");
}

} // namespace ukey::daemon
