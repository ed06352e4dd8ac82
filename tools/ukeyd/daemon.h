// ukeyd's state and its one event loop (epoll): PC/SC events from the
// watcher thread, scan results from the scanner child, signals, the socket's
// clients, and timers for the fallback rescan, the expiry re-check and hook
// timeouts. Everything but the PC/SC wait runs on this one thread.
#pragma once

#include "backend_wait.h"
#include "tool_config.h"
#include "expiry.h"
#include "hooks.h"
#include "key_tracker.h"
#include "pcsc_watch.h"
#include "pkcs11_service.h"
#include "renewal_schedule.h"
#include "scan.h"
#include "server.h"
#include "token/peer_access.h"

#include <nlohmann/json.hpp>

#include <deque>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>

namespace ukey::daemon {

class Daemon {
public:
    Daemon(ToolConfig cfg, std::filesystem::path config_file, std::string self_exe);
    ~Daemon();
    // Until SIGTERM/SIGINT; the exit code.
    int run();

private:
    using json = nlohmann::json;

    bool setup();
    void apply(const ToolConfig& cfg); // the parts a SIGHUP may change
    std::filesystem::path state_base(const ToolConfig& cfg) const;
    // The children (scanner, waiters, renewals) read $UKEY_CONF themselves:
    // they get a copy of the text in force, which an edit of the file that
    // SIGHUP refused cannot reach.
    void snapshot_config(const ToolConfig& cfg, const std::string& text);
    void reload();
    void on_signal();
    void on_pcsc();
    void handle(const PcscEvent& e);
    void on_scan(const ScanResult& r);
    void reconcile(int64_t time_ms);
    void check_expiry(const json& key, int64_t time_ms);
    void check_pin(const json& key, int64_t time_ms);
    void maybe_renew(const json& key, const json& cert, long days_left);
    void start_renewal(const json& key, const json& cert, std::vector<std::string> argv, const char* kind);
    void emit(json event);
    json make_event(const char* name, int64_t time_ms) const;
    json status() const;
    json answer(const json& request, uid_t uid, gid_t gid);
    // Service mode: whether uid may see this Key (its backend's users and
    // groups; root, the daemon's user and admins see all). Always outside
    // service mode.
    bool may_see(uid_t uid, gid_t gid, const json& key) const;
    json visible_to(uid_t uid, gid_t gid, const json& list) const; // a list of Keys or slots, filtered
    void start_pcsc();
    void stop_pcsc();
    int64_t next_timeout() const;

    ToolConfig cfg_;
    std::map<std::string, AccessList> backend_access_; // service mode: [[backend]] users/groups by name
    AccessList admins_;                                 // service mode: [service] admin_groups
    std::filesystem::path config_file_;
    std::string self_exe_;
    int ep_ = -1, sigfd_ = -1, pcsc_fd_ = -1;
    std::unique_ptr<Server> server_;
    std::unique_ptr<BackendWaiters> waiters_;
    std::unique_ptr<Pkcs11Service> service_; // [service]: Keys over p11-kit's RPC
    Scanner scanner_;
    Hooks hooks_;
    ExpiryWatch expiry_;
    std::unique_ptr<PcscWatch> pcsc_;
    std::mutex pcsc_mu_;
    std::deque<PcscEvent> pcsc_queue_;
    bool stopping_ = false;

    // What the daemon knows.
    std::string pcsc_state_ = "disabled"; // disabled | starting | up | down
    json pcsc_error_;                      // the last `down` reason
    KeyTracker keys_;
    PinLockWatch pin_locks_;
    RenewalSchedule renewals_;
    int64_t started_ms_ = 0;
    int64_t last_scan_ms_ = 0, last_scan_duration_ms_ = 0, scans_ = 0;
    std::string last_scan_error_;
    int64_t next_rescan_ = 0, next_expiry_ = 0; // monotonic ms; 0 = not scheduled
};

} // namespace ukey::daemon
