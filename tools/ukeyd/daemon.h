// ukeyd's state and its one event loop (epoll): PC/SC events from the
// watcher thread, scan results from the scanner child, signals, the socket's
// clients, and timers for the fallback rescan, the expiry re-check and hook
// timeouts. Everything but the PC/SC wait runs on this one thread.
#pragma once

#include "backend_wait.h"
#include "token/config.h"
#include "expiry.h"
#include "hooks.h"
#include "pcsc_watch.h"
#include "scan.h"
#include "server.h"

#include <nlohmann/json.hpp>

#include <deque>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>

namespace ukey::daemon {

class Daemon {
public:
    Daemon(Config cfg, std::filesystem::path config_file, std::string self_exe);
    ~Daemon();
    // Until SIGTERM/SIGINT; the exit code.
    int run();

private:
    using json = nlohmann::json;
    struct Reader {
        bool card = false;
        std::string atr;
        bool unusable = false;
    };

    bool setup();
    void apply(const Config& cfg); // the parts a SIGHUP may change
    std::filesystem::path state_base(const Config& cfg) const;
    // The children (scanner, waiters, renewals) read $UKEY_CONF themselves:
    // they get a copy of the text in force, which an edit of the file that
    // SIGHUP refused cannot reach.
    void snapshot_config(const Config& cfg, const std::string& text);
    void reload();
    void on_signal();
    void on_pcsc();
    void handle(const PcscEvent& e);
    void on_scan(const ScanResult& r);
    void reconcile(int64_t time_ms);
    void check_expiry(const json& key, int64_t time_ms);
    void check_pin(const json& key, const json* before, int64_t time_ms);
    void maybe_renew(const json& key, const json& cert, long days_left);
    void start_renewal(const json& key, const json& cert, std::vector<std::string> argv, const char* kind);
    void emit(json event);
    json make_event(const char* name, int64_t time_ms) const;
    std::string reader_of(const json& key) const;
    bool reader_has_slot(const std::string& reader) const;
    json status() const;
    json answer(const json& request);
    void start_pcsc();
    void stop_pcsc();
    int64_t next_timeout() const;

    Config cfg_;
    std::filesystem::path config_file_;
    std::string self_exe_;
    int ep_ = -1, sigfd_ = -1, pcsc_fd_ = -1;
    std::unique_ptr<Server> server_;
    std::unique_ptr<BackendWaiters> waiters_;
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
    std::map<std::string, Reader> readers_;
    json slots_ = json::array();           // from the last good scan
    std::map<std::string, json> backend_keys_;
    std::map<std::string, json> published_; // the Keys subscribers were told about
    std::set<std::string> awaiting_scan_;   // readers whose new card a backend should name first
    // PIN locks ("<key id>/user_pin"): seen once (with the scan count), and
    // announced. A lock must show in two scans in a row: a token read while
    // another process is still creating it can look locked for a moment.
    std::map<std::string, int64_t> lock_seen_;
    std::set<std::string> lock_announced_;
    // Automatic renewal (docs/renewal.md): Keys with a `ukey renew` running,
    // and when each last finished.
    std::set<std::string> renewing_;
    std::map<std::string, int64_t> renewed_at_;
    int64_t started_ms_ = 0;
    int64_t last_scan_ms_ = 0, last_scan_duration_ms_ = 0, scans_ = 0;
    std::string last_scan_error_;
    int64_t next_rescan_ = 0, next_expiry_ = 0; // monotonic ms; 0 = not scheduled
};

} // namespace ukey::daemon
