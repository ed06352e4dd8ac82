#include "daemon.h"
#include "unix_listener.h"

#include "clock.h"
#include "token/log.h"
#include "notify.h"
#include "renewal_trigger.h"

#include "client/state_file.h"

#include <algorithm>
#include <cerrno>
#include <climits>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <optional>
#include <sstream>


#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

namespace ukey::daemon {

using nlohmann::json;

namespace {

std::string pcsc_code(long code)
{
    char buf[16];
    snprintf(buf, sizeof buf, "0x%08lX", static_cast<unsigned long>(code) & 0xFFFFFFFFul);
    return buf;
}

// A Key in words for log lines: label and serial, or the reader.
std::string describe(const json& key)
{
    std::string s;
    if (key.value("source", "") == "pcsc")
        return "a card in '" + key.value("reader", "") + "'";
    s = "'" + key.value("label", "") + "' (serial " + key.value("serial", "") + ", " + key.value("backend", "") + ")";
    return s;
}

std::set<std::string> fingerprints(const json& key)
{
    std::set<std::string> out;
    if (key.contains("certificates") && key["certificates"].is_array())
        for (const auto& c : key["certificates"])
            out.insert(c.value("fingerprint", ""));
    return out;
}

} // namespace

Daemon::Daemon(ToolConfig cfg, std::filesystem::path config_file, std::string self_exe)
    : cfg_(std::move(cfg)), config_file_(std::move(config_file)), self_exe_(self_exe), scanner_(self_exe)
{
}

Daemon::~Daemon()
{
    stop_pcsc();
    waiters_.reset();
    server_.reset();
    for (int fd : {sigfd_, pcsc_fd_, ep_})
        if (fd >= 0)
            close(fd);
}

json Daemon::make_event(const char* name, int64_t time_ms) const
{
    return json{{"event", name}, {"time", iso_ms(time_ms)}, {"time_ms", time_ms}};
}

void Daemon::emit(json e)
{
    const std::string name = e["event"];
    std::string what = name;
    if (e.contains("key"))
        what += " " + describe(e["key"]);
    else if (e.contains("reader"))
        what += " '" + e["reader"].get<std::string>() + "'";
    if (e.contains("certificate"))
        what += ": certificate '" + e["certificate"].value("subject", "") + "', " +
                std::to_string(e.value("days_left", 0L)) + " days left";
    if (e.contains("message"))
        what += ": " + e["message"].get<std::string>();
    if (name == "pcsc-down" || name == "pin-locked" || name == "cert-expired")
        log::warning("ukeyd: " + what);
    else
        log::info("ukeyd: " + what);
    server_->publish(e);
    hooks_.fire(e);
}

bool Daemon::setup()
{
    started_ms_ = now_ms();
    ep_ = epoll_create1(EPOLL_CLOEXEC);
    sigset_t set;
    sigemptyset(&set);
    for (int s : {SIGTERM, SIGINT, SIGHUP, SIGCHLD})
        sigaddset(&set, s);
    // Blocked in every thread (the PC/SC thread inherits the mask), read here.
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    signal(SIGPIPE, SIG_IGN);
    sigfd_ = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
    pcsc_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (ep_ < 0 || sigfd_ < 0 || pcsc_fd_ < 0) {
        log::error(std::string("ukeyd: cannot set up its event loop: ") + strerror(errno));
        return false;
    }
    for (int fd : {sigfd_, pcsc_fd_}) {
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.fd = fd;
        epoll_ctl(ep_, EPOLL_CTL_ADD, fd, &ev);
    }
    server_ = std::make_unique<Server>(ep_, [this](const json& r, uid_t uid, gid_t gid) { return answer(r, uid, gid); });
    server_->set_visible([this](uid_t uid, gid_t gid, const json& e) {
        return !e.contains("key") || may_see(uid, gid, e["key"]);
    });
    waiters_ = std::make_unique<BackendWaiters>(ep_, self_exe_);
    if (auto e = server_->listen(cfg_.daemon_socket); !e) {
        log::error("ukeyd: " + e.error().message);
        return false;
    }
    service_ = std::make_unique<Pkcs11Service>(ep_, self_exe_);
    apply(cfg_);
    if (auto text = read_config_text(config_file_))
        snapshot_config(cfg_, *text);
    // Asked to serve Keys and cannot: better no daemon than one whose
    // applications find nothing (the log says why).
    if (cfg_.service.enabled && service_->listen_fd() < 0)
        return false;
    close_unclaimed_passed_sockets();
    scanner_.request();
    return true;
}

void Daemon::apply(const ToolConfig& cfg)
{
    hooks_.configure(cfg.hooks);
    waiters_->configure(cfg.backends);
    expiry_.set_thresholds(cfg.daemon.expiry_thresholds);
    expiry_.open(state_base(cfg));
    server_->set_access(cfg.daemon.allow_users, cfg.daemon.allow_groups);
    backend_access_.clear();
    for (const auto& b : cfg.backends)
        if (!b.users.empty() || !b.groups.empty())
            backend_access_.emplace(b.name, AccessList(b.users, b.groups));
    admins_ = AccessList({}, cfg.service_admin_groups);
    service_->configure(cfg, config_file_);
    next_expiry_ = mono_ms() + int64_t(cfg.daemon.expiry_check_interval_s * 1000);
    if (cfg.daemon.pcsc && !pcsc_)
        start_pcsc();
    else if (!cfg.daemon.pcsc && pcsc_)
        stop_pcsc();
}

std::filesystem::path Daemon::state_base(const ToolConfig& cfg) const
{
    // Under systemd (StateDirectory=) the daemon's own state goes to
    // /var/lib/ukey; otherwise next to the PIN counters.
    const char* sd = secure_getenv("STATE_DIRECTORY");
    return sd && *sd == '/' ? std::filesystem::path(sd) : cfg.state_dir;
}

void Daemon::snapshot_config(const ToolConfig& cfg, const std::string& text)
{
    const auto file = state_base(cfg) / "ukeyd" / "config-in-force.toml";
    if (auto e = client::write_private_file(file, text); !e) {
        // The children then read the file itself.
        log::warning("ukeyd: cannot keep a copy of the config: " + e.error().message);
        setenv("UKEY_CONF", config_file_.c_str(), 1);
        return;
    }
    setenv("UKEY_CONF", file.c_str(), 1);
}

void Daemon::start_pcsc()
{
    pcsc_state_ = "starting";
    pcsc_ = std::make_unique<PcscWatch>([this](PcscEvent e) {
        {
            std::lock_guard<std::mutex> g(pcsc_mu_);
            pcsc_queue_.push_back(std::move(e));
        }
        uint64_t one = 1;
        [[maybe_unused]] ssize_t n = write(pcsc_fd_, &one, sizeof one);
    });
    pcsc_->start();
}

void Daemon::stop_pcsc()
{
    if (!pcsc_)
        return;
    pcsc_->stop();
    pcsc_.reset();
    pcsc_state_ = "disabled";
    keys_.forget_readers();
}

void Daemon::reload()
{
    sd_notify("RELOADING=1");
    // Checked again (file_trust.h): the file may have changed hands.
    auto text = read_config_text(config_file_);
    auto c = text ? parse_tool_config(*text, config_file_) : Result<ToolConfig>(text.error());
    if (!c) {
        log::error("ukeyd: the config was not reloaded, the old one stays in force: " + c.error().message);
        sd_notify("READY=1");
        return;
    }
    if (c->daemon_socket != cfg_.daemon_socket)
        log::warning("ukeyd: the new socket path " + c->daemon_socket.string() +
                     " takes effect at the next restart; still serving " + cfg_.daemon_socket.string());
    c->daemon_socket = cfg_.daemon_socket;
    cfg_ = std::move(*c);
    apply(cfg_);
    snapshot_config(cfg_, *text);
    log::info("ukeyd: config " + config_file_.string() + " reloaded; rescanning");
    scanner_.request();
    // The Keys present are checked again with the new thresholds.
    for (const auto& [id, key] : keys_.published())
        check_expiry(key, now_ms());
    expiry_.save();
    sd_notify("READY=1");
}

void Daemon::on_signal()
{
    signalfd_siginfo si{};
    while (read(sigfd_, &si, sizeof si) == ssize_t(sizeof si)) {
        switch (si.ssi_signo) {
        case SIGTERM:
        case SIGINT:
            stopping_ = true;
            break;
        case SIGHUP:
            reload();
            break;
        case SIGCHLD:
            for (;;) {
                int status = 0;
                pid_t pid = waitpid(-1, &status, WNOHANG);
                if (pid <= 0)
                    break;
                if (pid == scanner_.pid()) {
                    if (auto r = scanner_.on_exit(status))
                        on_scan(*r);
                } else if (!service_->on_exit(pid, status) && !hooks_.on_exit(pid, status)) {
                    waiters_->on_exit(pid, status);
                }
            }
            break;
        }
    }
}

void Daemon::on_pcsc()
{
    uint64_t n;
    [[maybe_unused]] ssize_t r = read(pcsc_fd_, &n, sizeof n);
    std::deque<PcscEvent> q;
    {
        std::lock_guard<std::mutex> g(pcsc_mu_);
        q.swap(pcsc_queue_);
    }
    for (const auto& e : q)
        handle(e);
}

void Daemon::handle(const PcscEvent& e)
{
    using K = PcscEvent::Kind;
    switch (e.kind) {
    case K::up: {
        const bool was_down = pcsc_state_ == "down";
        pcsc_state_ = "up";
        pcsc_error_ = json();
        if (was_down) {
            json ev = make_event("pcsc-up", e.time_ms);
            ev["message"] = "pcscd is reachable again";
            emit(ev);
        }
        break;
    }
    case K::down: {
        const bool was_down = pcsc_state_ == "down";
        pcsc_state_ = "down";
        pcsc_error_ = json{{"code", pcsc_code(e.code)}, {"message", e.message}};
        if (!was_down) {
            json ev = make_event("pcsc-down", e.time_ms);
            ev["error"] = "pcscd-unreachable";
            ev["code"] = pcsc_code(e.code);
            ev["message"] = e.message;
            emit(ev);
        }
        break;
    }
    case K::reader_added: {
        keys_.reader_added(e.reader);
        json ev = make_event("reader-added", e.time_ms);
        ev["reader"] = e.reader;
        emit(ev);
        scanner_.request();
        break;
    }
    case K::reader_removed: {
        if (!keys_.reader_removed(e.reader))
            break;
        reconcile(e.time_ms); // its card's Key is gone with it
        json ev = make_event("reader-removed", e.time_ms);
        ev["reader"] = e.reader;
        emit(ev);
        scanner_.request();
        break;
    }
    case K::reader_unusable:
        log::warning("ukeyd: reader '" + e.reader +
                     "' is listed by pcscd but its driver failed; it is ignored (check the reader's driver)");
        keys_.reader_unusable(e.reader);
        break;
    case K::card_inserted: {
        keys_.card_inserted(e.reader, e.atr);
        reconcile(e.time_ms);
        scanner_.request();
        break;
    }
    case K::card_removed: {
        keys_.card_removed(e.reader);
        reconcile(e.time_ms);
        scanner_.request();
        break;
    }
    }
}

void Daemon::on_scan(const ScanResult& r)
{
    ++scans_;
    last_scan_ms_ = r.started_ms;
    last_scan_duration_ms_ = r.duration_ms;
    if (r.ok) {
        if (!last_scan_error_.empty())
            log::info("ukeyd: backend scans work again");
        last_scan_error_.clear();
        keys_.scanned(r.data);
    } else {
        // The Keys last seen stay: a broken scan is not a removal.
        if (r.error != last_scan_error_)
            log::error("ukeyd: " + r.error);
        last_scan_error_ = r.error;
    }
    keys_.scan_finished();
    reconcile(now_ms());
    if (cfg_.daemon.rescan_interval_s > 0)
        next_rescan_ = mono_ms() + int64_t(cfg_.daemon.rescan_interval_s * 1000);
}

void Daemon::reconcile(int64_t time_ms)
{
    const KeyTracker::Changes ch = keys_.reconcile();
    for (const json& old : ch.removed) {
        pin_locks_.forget(old.value("id", ""));
        json ev = make_event("key-removed", time_ms);
        ev["key"] = old;
        emit(ev);
    }
    bool checked = false;
    for (const auto& [key, before] : ch.present) {
        if (!before) {
            json ev = make_event("key-inserted", time_ms);
            ev["key"] = key;
            emit(ev);
            check_pin(key, time_ms);
            // An unfinished renewal (the Key was pulled out, or ukey died) is
            // completed or rolled back before anything else touches it.
            if (auto argv = resume_command(cfg_, key); !argv.empty() && !renewals_.running(key.value("id", "")))
                start_renewal(key, json::object(), std::move(argv), "resume");
            check_expiry(key, time_ms);
            checked = true;
        } else {
            check_pin(key, time_ms);
            if (fingerprints(key) != fingerprints(*before)) {
                check_expiry(key, time_ms);
                checked = true;
            }
        }
    }
    if (checked)
        expiry_.save();
}

void Daemon::check_pin(const json& key, int64_t time_ms)
{
    const PinLockWatch::Verdict v = pin_locks_.check(key, scans_);
    if (v.confirm)
        scanner_.request(); // the confirming scan, at once
    for (const std::string& which : v.announce) {
        json ev = make_event("pin-locked", time_ms);
        ev["key"] = key;
        ev["which"] = which == "user_pin" ? "user" : "so";
        ev["message"] = which == "user_pin"
                            ? "the user PIN is locked: unlock it with the SO PIN (`ukey pin unlock`)"
                            : "the SO PIN is locked: only the issuer, or the backend's own tools, can help (ukey(1), pin unlock)";
        emit(ev);
    }
}

void Daemon::check_expiry(const json& key, int64_t time_ms)
{
    if (!key.contains("certificates") || !key["certificates"].is_array())
        return;
    const std::time_t now = std::time(nullptr);
    for (const auto& c : key["certificates"]) {
        if (!c.contains("not_after_unix") || !c.contains("fingerprint"))
            continue;
        maybe_renew(key, c, days_left(c["not_after_unix"].get<int64_t>(), now));
        auto n = expiry_.check(c["fingerprint"].get<std::string>(), c["not_after_unix"].get<int64_t>(), now);
        if (!n)
            continue;
        json ev = make_event(n->expired ? "cert-expired" : "cert-expiring", time_ms);
        ev["key"] = key;
        ev["certificate"] = c;
        ev["days_left"] = n->days_left;
        if (!n->expired)
            ev["threshold"] = n->threshold;
        emit(ev);
    }
}

void Daemon::maybe_renew(const json& key, const json& cert, long days)
{
    if (!renewals_.due(key.value("id", ""), now_ms(), int64_t(cfg_.daemon.expiry_check_interval_s * 1000)))
        return;
    auto argv = renewal_command(cfg_, key, cert, days);
    if (!argv.empty())
        start_renewal(key, cert, std::move(argv), "renewal");
}

void Daemon::start_renewal(const json& key, const json& cert, std::vector<std::string> argv, const char* kind)
{
    const std::string id = key.value("id", "");
    renewals_.started(id);
    std::vector<std::string> env{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"};
    const char* conf = secure_getenv("UKEY_CONF");
    env.push_back("UKEY_CONF=" + (conf && *conf ? std::string(conf) : config_file_.string()));
    // What the module and the tests need to reach the same Keys as the
    // scanner does; never a PIN (the renewal reads its PIN file itself).
    for (const char* name : {"UKEY_MODULE", "SOFTHSM2_CONF", "UKEY_LOG_LEVEL", "UKEY_TEST_CRASH_AFTER", "ASAN_OPTIONS",
                             "LSAN_OPTIONS", "UBSAN_OPTIONS", "LD_PRELOAD", "HOME"})
        if (const char* v = secure_getenv(name))
            env.push_back(std::string(name) + "=" + v);
    const std::string what = std::string(kind) + " of " + describe(key);
    json ev = make_event("renewal", now_ms());
    ev["key"] = key;
    if (!cert.empty())
        ev["certificate"] = cert;
    ev["state"] = "started";
    ev["message"] = what + " started";
    emit(ev);
    hooks_.run(std::move(argv), std::move(env), renewal_timeout_s(cfg_), what,
               [this, key, cert, what, id](int status) {
                   renewals_.finished(id, now_ms());
                   json done = make_event("renewal", now_ms());
                   done["key"] = key;
                   if (!cert.empty())
                       done["certificate"] = cert;
                   const RenewalOutcome out = renewal_outcome(status);
                   done["state"] = out.state;
                   done["message"] = what + out.message;
                   emit(done);
                   scanner_.request(); // the Key's new certificate
               });
}

int64_t Daemon::next_timeout() const
{
    int64_t d = INT64_MAX;
    if (next_rescan_)
        d = std::min(d, next_rescan_);
    d = std::min(d, next_expiry_);
    if (scanner_.running())
        d = std::min(d, scanner_.deadline_ms());
    d = std::min(d, hooks_.next_deadline());
    d = std::min(d, waiters_->next_deadline());
    if (const int64_t at = service_->next_deadline())
        d = std::min(d, at);
    return d;
}

int Daemon::run()
{
    if (!setup())
        return 1;
    log::info("ukeyd " UKEY_VERSION " listening on " + cfg_.daemon_socket.string() +
              (server_->inherited() ? " (socket from systemd)" : "") + " (config " + config_file_.string() + ")");
    sd_notify("READY=1\nSTATUS=watching Keys");
    while (!stopping_) {
        scanner_.maybe_start(cfg_.daemon.scan_timeout_s);
        if (scanner_.fd() >= 0) {
            epoll_event ev{};
            ev.events = EPOLLIN;
            ev.data.fd = scanner_.fd();
            epoll_ctl(ep_, EPOLL_CTL_ADD, scanner_.fd(), &ev); // EEXIST while it runs: fine
        }
        const int64_t now = mono_ms();
        const int64_t until = next_timeout();
        int timeout = until == INT64_MAX ? -1 : int(std::clamp<int64_t>(until - now, 0, 60'000));
        epoll_event evs[64];
        int n = epoll_wait(ep_, evs, 64, timeout);
        if (n < 0 && errno != EINTR) {
            log::error(std::string("ukeyd: epoll_wait: ") + strerror(errno));
            break;
        }
        for (int i = 0; i < n; ++i) {
            const int fd = evs[i].data.fd;
            // One bad input (a scan or an event the code did not foresee)
            // must not end the daemon: it is logged and the loop goes on.
            try {
            if (fd == sigfd_)
                on_signal();
            else if (fd == pcsc_fd_)
                on_pcsc();
            else if (fd == server_->listen_fd())
                server_->on_accept();
            else if (fd == service_->listen_fd())
                service_->on_accept();
            else if (fd == scanner_.fd()) {
                if (auto r = scanner_.on_readable())
                    on_scan(*r);
            } else if (waiters_->owns(fd)) {
                if (waiters_->on_readable(fd))
                    scanner_.request();
            } else if (server_->owns(fd))
                server_->on_client(fd, evs[i].events);
            } catch (const std::exception& e) {
                log::error(std::string("ukeyd: internal error, carrying on: ") + e.what() +
                           (fd == pcsc_fd_ ? " (a PC/SC event)" : fd == sigfd_ ? " (a signal or a child)" : ""));
            }
        }
        const int64_t t = mono_ms();
        if (auto r = scanner_.on_timeout(t))
            on_scan(*r);
        hooks_.on_tick(t);
        waiters_->on_tick(t);
        service_->on_tick(t);
        if (next_rescan_ && t >= next_rescan_) {
            next_rescan_ = 0;
            scanner_.request();
        }
        if (t >= next_expiry_) {
            next_expiry_ = t + int64_t(cfg_.daemon.expiry_check_interval_s * 1000);
            for (const auto& [id, key] : keys_.published())
                check_expiry(key, now_ms());
            expiry_.save();
        }
    }
    sd_notify("STOPPING=1");
    log::info("ukeyd: stopping");
    stop_pcsc();
    waiters_->stop_all();
    service_->stop_all();
    hooks_.stop_all(2000);
    server_->close_listener();
    return 0;
}

} // namespace ukey::daemon
