// ukey status, ukey watch: what the daemon ukeyd sees (docs/ukeyd.md).
//
// Both talk to ukeyd's Unix socket (JSON lines), whose path is the config's
// [daemon] socket, or --socket PATH. They do not load the PKCS#11 module.
//
// ukey status [--socket PATH]
//   {"socket": "path", "status": {...the daemon's status object...},
//    "keys": [key, ...] (the daemon's Key objects, docs/ukeyd.md)}
//
// ukey watch [--socket PATH] [--events a,b] [--count N] [--timeout S]
//   One line per event. With --json: the daemon's event lines, as JSON
//   documents of one line (parsed and written again through json_text, so
//   that no byte a terminal acts on passes).
//   Ends after N events (--count), after S seconds (--timeout), on SIGINT or
//   SIGTERM (exit 0), or when the daemon goes away (exit 15).
//
// When the daemon is not running both exit 15 (no_daemon).
#include "client/certs.h"
#include "cli.h"

#include "tool_config.h"
#include "token/ukeyd_client.h"
#include "token/ukeyd_events.h"

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <ctime>
#include <iostream>
#include <poll.h>
#include <sstream>
#include <sys/signalfd.h>
#include <unistd.h>

namespace ukey::cli {

namespace {

using Clock = std::chrono::steady_clock;

constexpr std::size_t max_reply = 64 * 1024 * 1024; // a `list` of many Keys with certificates may be big
constexpr int reply_timeout_ms = 5000;

const char* const start_hint = "start it with `systemctl start ukeyd`";

// A boolean field, or `dflt` when it is absent or not a boolean (the daemon's
// objects are read leniently: an unexpected type never ends the command).
bool flag(const nlohmann::json& j, const char* key, bool dflt)
{
    if (!j.is_object() || !j.contains(key) || !j[key].is_boolean())
        return dflt;
    return j[key].get<bool>();
}

// An object field, or an empty object.
nlohmann::json object(const nlohmann::json& j, const char* key)
{
    if (!j.is_object() || !j.contains(key) || !j[key].is_object())
        return nlohmann::json::object();
    return j[key];
}

// The socket: --socket, else [daemon] socket of the config, else the default.
std::string socket_path(const std::string& option)
{
    if (!option.empty())
        return option;
    const std::filesystem::path conf = config_path();
    std::error_code ec;
    const bool explicit_conf = secure_getenv("UKEY_CONF") && *secure_getenv("UKEY_CONF");
    if (!explicit_conf && !std::filesystem::exists(conf, ec))
        return default_daemon_socket;
    auto cfg = load_tool_config(conf);
    if (!cfg)
        throw Failure(setup, "cannot tell where ukeyd listens: " + cfg.error().message +
                                 " (or give the socket with --socket PATH)");
    return cfg->daemon_socket.string();
}

// The socket client (token/ukeyd_client.h), its failures in the CLI's
// words and exit codes.
class Connection {
public:
    explicit Connection(std::string path) : path_(std::move(path)), client_(max_reply)
    {
        const auto e = client_.connect(path_, deadline());
        if (!e)
            return;
        switch (e->kind) {
        case UkeydFailure::bad_path:
            throw Failure(usage, "the socket path '" + path_ + "' is empty or too long");
        case UkeydFailure::absent:
            throw Failure(no_daemon, std::string("ukeyd is not running: ") + start_hint + " (no daemon at " + path_ +
                                         ": " + e->why + ")");
        case UkeydFailure::denied:
            throw Failure(no_daemon, "cannot connect to ukeyd at " + path_ + ": " + e->why +
                                         " (is your user in [daemon] allow_users or allow_groups?)");
        default:
            throw Failure(no_daemon, "cannot connect to ukeyd at " + path_ + ": " + e->why);
        }
    }

    int fd() const { return client_.fd(); }
    const std::string& path() const { return path_; }
    UkeydClient& client() { return client_; }

    // A request and its reply; a reply with "ok": false is a failure.
    nlohmann::json request(const std::string& req)
    {
        UkeydFailure f{UkeydFailure::failed, {}};
        auto j = client_.request(req, deadline(), f);
        if (!j)
            throw failed(f);
        return *j;
    }

    Failure failed(const UkeydFailure& f) const
    {
        switch (f.kind) {
        case UkeydFailure::timeout:
            return Failure(failure, "ukeyd at " + path_ + " did not answer within " +
                                        std::to_string(reply_timeout_ms / 1000) +
                                        " s (see its log: journalctl -u ukeyd)");
        case UkeydFailure::too_long:
        case UkeydFailure::not_json:
            return Failure(failure, "ukeyd at " + path_ + " " + f.why.substr(f.why.rfind("it ", 0) == 0 ? 3 : 0));
        case UkeydFailure::refused:
            return Failure(failure, "ukeyd refused the request: " + f.why);
        default:
            return Failure(no_daemon, "ukeyd went away (" + f.why + "); socket " + path_);
        }
    }

private:
    static UkeydClient::Clock::time_point deadline()
    {
        return UkeydClient::Clock::now() + std::chrono::milliseconds(reply_timeout_ms);
    }

    std::string path_;
    UkeydClient client_;
};

// --- text output ------------------------------------------------------------

// A field of the daemon's JSON as text for the terminal: escaped (labels,
// serials, reader names and certificate subjects come from Keys and cards).
std::string str(const nlohmann::json& j, const char* key, const std::string& dflt = "")
{
    if (!j.is_object() || !j.contains(key))
        return dflt;
    const auto& v = j[key];
    if (v.is_string())
        return shown(v.get<std::string>());
    if (v.is_null())
        return dflt;
    return shown(json_text(v, -1));
}

std::string duration_text(double seconds)
{
    long s = long(seconds);
    std::ostringstream o;
    if (s >= 86400)
        o << s / 86400 << " d " << (s % 86400) / 3600 << " h";
    else if (s >= 3600)
        o << s / 3600 << " h " << (s % 3600) / 60 << " min";
    else if (s >= 60)
        o << s / 60 << " min " << s % 60 << " s";
    else
        o << s << " s";
    return o.str();
}

std::string tries_text(const nlohmann::json& t)
{
    if (!t.is_object())
        return "unknown";
    if (flag(t, "locked", false))
        return "LOCKED";
    if (!t.contains("tries_left") || t["tries_left"].is_null())
        return "counted by the Key";
    std::string s = shown(json_text(t["tries_left"], -1));
    if (t.contains("max_tries") && !t["max_tries"].is_null())
        s += " of " + shown(json_text(t["max_tries"], -1));
    return s + " tries left";
}

// "'Alice'/5c3a4e1b0f2d9a77", or the id for a card no backend knows.
std::string key_name(const nlohmann::json& key)
{
    if (!key.is_object())
        return "?";
    if (str(key, "source") == "pcsc")
        return flag(key, "initialized", true) ? "card (no backend shows it)" : "card (not initialised)";
    std::string label = str(key, "label");
    std::string serial = str(key, "serial");
    if (!flag(key, "initialized", true) && label.empty())
        label = "(not initialised)";
    return "'" + label + "'/" + (serial.empty() ? "-" : serial);
}

// Days left of a certificate in the daemon's Key object: its days_left, else
// counted from not_after_unix (ukey and ukeyd count days the same way).
long days_of(const nlohmann::json& cert)
{
    if (cert.contains("days_left") && cert["days_left"].is_number())
        return cert["days_left"].get<long>();
    if (!cert.contains("not_after_unix") || !cert["not_after_unix"].is_number())
        return 0;
    return client::days_until(std::time_t(cert["not_after_unix"].get<long long>()), std::time(nullptr));
}

std::string days_text(long days)
{
    if (days < 0)
        return "EXPIRED " + std::to_string(-days) + (days == -1 ? " day ago" : " days ago");
    return std::to_string(days) + (days == 1 ? " day left" : " days left");
}

void print_key(const nlohmann::json& k)
{
    std::cout << "  " << key_name(k);
    if (str(k, "source") == "pcsc") {
        std::cout << " in reader '" << str(k, "reader") << "'";
        if (!str(k, "atr").empty())
            std::cout << ", ATR " << str(k, "atr");
        std::cout << "\n    " << str(k, "note", "install the Key's PKCS#11 module and add it as a [[backend]]") << "\n";
        return;
    }
    std::cout << " (" << str(k, "backend", "?") << ", " << str(k, "manufacturer") << " " << str(k, "model") << ")";
    if (k.contains("slot_id") && k["slot_id"].is_number())
        std::cout << " slot " << k["slot_id"].dump();
    std::cout << "\n";
    if (!str(k, "reader").empty())
        std::cout << "    reader: " << str(k, "reader") << "\n";
    if (!flag(k, "initialized", true)) {
        std::cout << "    NOT INITIALISED: set it up with `ukey init`\n";
        return;
    }
    if (k.contains("user_pin") || k.contains("so_pin")) {
        std::cout << "    user PIN: " << tries_text(object(k, "user_pin"))
                  << "; SO PIN: " << tries_text(object(k, "so_pin"));
        if (k.contains("user_pin") && k["user_pin"].is_object() && flag(k["user_pin"], "must_change", false))
            std::cout << "; the PIN must be changed (`ukey pin change`)";
        std::cout << "\n";
    }
    if (k.contains("certificates") && k["certificates"].is_array()) {
        if (k["certificates"].empty())
            std::cout << "    no certificates\n";
        for (const auto& c : k["certificates"]) {
            std::cout << "    certificate '" << str(c, "label") << "' " << str(c, "subject") << ": until "
                      << str(c, "not_after").substr(0, 10) << " (" << days_text(days_of(c)) << ")\n";
        }
    }
}

// The daemon's status object (docs/ukeyd.md, "The socket") in words.
void print_status(const std::string& path, const nlohmann::json& st, const nlohmann::json& keys)
{
    std::cout << "ukeyd " << str(st, "version", "?") << " (pid " << str(st, "pid", "?") << ")";
    if (st.contains("uptime_s") && st["uptime_s"].is_number())
        std::cout << ", up " << duration_text(st["uptime_s"].get<double>());
    std::cout << ", socket " << shown(path) << "\n";

    // "pcsc": {"state": "disabled" | "starting" | "up" | "down", "readers": [{"name", "card", "atr"}],
    //          "error": {"code", "message"} (the last reason it was down)}
    const nlohmann::json pcsc = object(st, "pcsc");
    const std::string state = str(pcsc, "state", "unknown");
    if (state == "disabled") {
        std::cout << "PC/SC: not watched ([daemon] pcsc = false)\n";
    } else if (state == "up") {
        std::cout << "PC/SC: up (pcscd answers)\n";
    } else if (state == "starting") {
        std::cout << "PC/SC: connecting to pcscd\n";
    } else {
        const nlohmann::json err = object(pcsc, "error");
        std::cout << "PC/SC: DOWN: pcscd is not reachable";
        if (!str(err, "message").empty())
            std::cout << ": " << str(err, "message");
        if (!str(err, "code").empty())
            std::cout << " (" << str(err, "code") << ")";
        std::cout << "\n  smart cards and USB Keys behind pcscd are not seen until it answers again\n";
    }
    if (pcsc.contains("readers") && pcsc["readers"].is_array()) {
        if (pcsc["readers"].empty() && state == "up")
            std::cout << "  no readers\n";
        for (const auto& r : pcsc["readers"]) {
            std::cout << "  reader '" << str(r, "name") << "': " << (flag(r, "card", false) ? "card present" : "empty");
            if (!str(r, "atr").empty())
                std::cout << " (ATR " << str(r, "atr") << ")";
            if (flag(r, "unusable", false))
                std::cout << ", UNUSABLE (its driver failed; ignored)";
            std::cout << "\n";
        }
    }

    // "scan": {"count", "running", "interval_s", "last", "last_duration_ms", "error"}
    const nlohmann::json scan = object(st, "scan");
    std::cout << "Last scan: ";
    if (str(scan, "last").empty())
        std::cout << "none yet";
    else
        std::cout << str(scan, "last") << " (took " << str(scan, "last_duration_ms", "?") << " ms)";
    if (!str(scan, "error").empty())
        std::cout << ", FAILED: " << str(scan, "error");
    if (flag(scan, "running", false))
        std::cout << "; a scan is running";
    std::cout << "\n";
    if (st.contains("subscribers"))
        std::cout << "Subscribers: " << str(st, "subscribers") << "\n";

    std::cout << "Keys present: " << keys.size() << "\n";
    for (const auto& k : keys)
        print_key(k);
}

// One event in one line: time event key-label/serial reader ...
std::string event_line(const nlohmann::json& e)
{
    std::ostringstream o;
    o << str(e, "time", "-") << " " << str(e, "event", "?");
    if (e.contains("key")) {
        const auto& k = e["key"];
        o << " " << key_name(k);
        if (k.is_object() && k.contains("slot_id") && k["slot_id"].is_number())
            o << " slot " << k["slot_id"].dump();
        if (!str(k, "reader").empty())
            o << " reader '" << str(k, "reader") << "'";
        if (k.is_object() && str(k, "source") != "pcsc" && !str(k, "backend").empty())
            o << " backend " << str(k, "backend");
    }
    if (e.contains("reader"))
        o << " reader '" << (e["reader"].is_string() ? shown(e["reader"].get<std::string>()) : str(e["reader"], "name"))
          << "'";
    if (e.contains("which"))
        o << " " << str(e, "which") << " PIN";
    if (e.contains("certificate")) {
        const auto& c = e["certificate"];
        o << " certificate '" << str(c, "label") << "' " << str(c, "subject") << " not_after " << str(c, "not_after");
    }
    if (e.contains("threshold"))
        o << " threshold " << str(e, "threshold");
    if (e.contains("days_left"))
        o << " days_left " << str(e, "days_left");
    if (e.contains("state"))
        o << " state " << str(e, "state");
    if (e.contains("code"))
        o << " " << str(e, "error") << (str(e, "error").empty() ? "" : " ") << str(e, "code");
    if (e.contains("message"))
        o << ": " << str(e, "message");
    return o.str();
}

std::vector<std::string> split_events(const std::string& list)
{
    std::vector<std::string> out;
    std::stringstream in(list);
    std::string item;
    while (std::getline(in, item, ',')) {
        if (item.empty())
            continue;
        if (!event_named(item)) {
            std::string all;
            for (const auto& k : ukeyd_event_names)
                all += (all.empty() ? "" : ", ") + std::string(k);
            throw Failure(usage, "unknown event '" + shown(item) + "' in --events; the events are: " + all);
        }
        out.push_back(item);
    }
    return out;
}

} // namespace

void add_daemon(CLI::App& app, Context& ctx)
{
    // --- ukey status ---
    {
        auto* cmd = app.add_subcommand("status", "What the daemon ukeyd sees: PC/SC, readers, Keys, last scan");
        static std::string socket;
        cmd->add_option("--socket", socket, "ukeyd's socket (default: [daemon] socket of ukey.conf)");
        cmd->callback([&ctx] {
            Connection c(socket_path(socket));
            nlohmann::json st = c.request(R"({"request":"status"})");
            nlohmann::json ls = c.request(R"({"request":"list"})");
            nlohmann::json status = object(st, "status");
            nlohmann::json keys = ls.contains("keys") && ls["keys"].is_array() ? ls["keys"] : nlohmann::json::array();
            nlohmann::json doc = {{"socket", c.path()}, {"status", status}, {"keys", keys}};
            ctx.print(doc, [&] { print_status(c.path(), status, keys); });
        });
    }

    // --- ukey watch ---
    {
        auto* cmd = app.add_subcommand("watch", "Print ukeyd's events as they happen, one line each");
        static std::string socket, events;
        static long count = 0;
        static double timeout = 0;
        cmd->add_option("--socket", socket, "ukeyd's socket (default: [daemon] socket of ukey.conf)");
        cmd->add_option("--events", events, "only these events, comma-separated (e.g. key-inserted,key-removed)");
        cmd->add_option("--count", count, "stop after N events (exit 0)")->check(CLI::PositiveNumber);
        cmd->add_option("--timeout", timeout, "stop after S seconds (exit 0, or 1 if --count was not reached)")
            ->check(CLI::PositiveNumber);
        cmd->callback([&ctx] {
            auto run = [&ctx] {
                const std::vector<std::string> wanted = split_events(events);
                // SIGINT/SIGTERM end the watch cleanly: they are read from a signalfd.
                sigset_t mask;
                sigemptyset(&mask);
                sigaddset(&mask, SIGINT);
                sigaddset(&mask, SIGTERM);
                sigprocmask(SIG_BLOCK, &mask, nullptr);
                const int sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
                if (sfd < 0)
                    throw Failure(failure, std::string("signalfd: ") + std::strerror(errno));
                struct Closer {
                    int fd;
                    ~Closer() { ::close(fd); }
                } closer{sfd};

                Connection c(socket_path(socket));
                c.request(UkeydClient::subscribe_request(wanted));
                if (!ctx.json && !ctx.quiet)
                    std::cerr << "ukey: watching ukeyd's events (" << shown(c.path()) << "); Ctrl-C ends" << std::endl;

                const auto deadline = Clock::now() + std::chrono::milliseconds(long(timeout * 1000));
                long seen = 0;
                // Prints one event; true when --count is reached.
                auto emit = [&](const std::string& line) {
                    nlohmann::json e = nlohmann::json::parse(line, nullptr, false);
                    if (ctx.json)
                        std::cout << (e.is_discarded() ? json_text(line, -1) : json_text(e, -1)) << std::endl;
                    else
                        std::cout << (e.is_object() ? event_line(e) : shown(line)) << std::endl;
                    return count > 0 && ++seen >= count;
                };
                for (;;) {
                    while (auto line = c.client().next_line())
                        if (emit(*line))
                            return;
                    if (auto e = c.client().overlong())
                        throw c.failed(*e);
                    int wait_ms = -1;
                    if (timeout > 0) {
                        auto left =
                            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
                        if (left <= 0) {
                            if (count > 0)
                                throw Failure(failure, std::to_string(seen) + " of " + std::to_string(count) +
                                                           " events arrived within the --timeout");
                            return;
                        }
                        wait_ms = int(left);
                    }
                    pollfd p[2] = {{c.fd(), POLLIN, 0}, {sfd, POLLIN, 0}};
                    int r = ::poll(p, 2, wait_ms);
                    if (r < 0 && errno != EINTR)
                        throw Failure(failure, std::string("poll: ") + std::strerror(errno));
                    if (r > 0 && (p[1].revents & POLLIN))
                        return; // SIGINT or SIGTERM: a clean end
                    if (r <= 0 || !(p[0].revents & (POLLIN | POLLHUP | POLLERR)))
                        continue;
                    if (auto e = c.client().receive()) {
                        while (auto line = c.client().next_line()) // what came before the end
                            if (emit(*line))
                                return;
                        throw c.failed(*e);
                    }
                }
            };
            try {
                run();
            } catch (const Failure& f) {
                // JSON lines stay JSON lines: the error document on one line.
                if (ctx.json) {
                    nlohmann::json err = {{"code", static_cast<int>(f.code)}, {"message", f.what()}, {"ckr", nullptr}};
                    std::cout << json_text(nlohmann::json{{"error", err}}, -1) << std::endl;
                    ctx.json_error_done = true;
                }
                throw;
            }
        });
    }
}

} // namespace ukey::cli
