#include "hooks.h"

#include "clock.h"
#include "child.h"
#include "token/file_trust.h"
#include "token/log.h"
#include "token/escape.h"

#include <algorithm>
#include <cerrno>
#include <climits>
#include <csignal>
#include <cstring>

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

namespace ukey::daemon {

using nlohmann::json;

namespace {

std::string str(const json& j, const char* key)
{
    if (!j.is_object() || !j.contains(key))
        return {};
    const json& v = j[key];
    if (v.is_string())
        return v.get<std::string>();
    if (v.is_number_integer())
        return std::to_string(v.get<int64_t>());
    if (v.is_number_unsigned())
        return std::to_string(v.get<uint64_t>());
    if (v.is_boolean())
        return v.get<bool>() ? "1" : "0";
    return {};
}

// Values come from Keys, cards and certificates and end up in hooks' logs,
// mails and terminals: escaped like ukey's own output (token/escape.h), so a
// hook sees printable UTF-8 only. UKEY_EVENT_JSON has the exact values.
void add(std::vector<std::string>& env, const char* name, const std::string& value)
{
    if (value.empty())
        return;
    env.push_back(std::string(name) + "=" + escape::printable(value));
}

// The variables of a hook: where in the event each comes from. A Key's
// reader stands in for an event's own (UKEY_READER) when it has none.
struct Var {
    const char* name;
    const char* field;
};
constexpr Var event_vars[] = {{"UKEY_EVENT", "event"}, {"UKEY_TIME", "time"}, {"UKEY_READER", "reader"}};
constexpr Var key_vars[] = {{"UKEY_KEY_ID", "id"},
                            {"UKEY_KEY_SOURCE", "source"},
                            {"UKEY_SLOT_ID", "slot_id"},
                            {"UKEY_BACKEND", "backend"},
                            {"UKEY_TOKEN_LABEL", "label"},
                            {"UKEY_TOKEN_SERIAL", "serial"},
                            {"UKEY_TOKEN_MANUFACTURER", "manufacturer"},
                            {"UKEY_TOKEN_MODEL", "model"},
                            {"UKEY_ATR", "atr"}};
constexpr Var cert_vars[] = {{"UKEY_CERT_ID", "id"},
                             {"UKEY_CERT_LABEL", "label"},
                             {"UKEY_CERT_SUBJECT", "subject"},
                             {"UKEY_CERT_NOT_AFTER", "not_after"},
                             {"UKEY_CERT_FINGERPRINT", "fingerprint"}};
constexpr Var detail_vars[] = {{"UKEY_DAYS_LEFT", "days_left"}, {"UKEY_THRESHOLD", "threshold"},
                               {"UKEY_PIN", "which"},           {"UKEY_ERROR", "error"},
                               {"UKEY_ERROR_CODE", "code"},     {"UKEY_MESSAGE", "message"},
                               {"UKEY_RENEWAL_STATE", "state"}};

} // namespace

std::vector<std::string> hook_environment(const json& e)
{
    std::vector<std::string> env{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"};
    auto add_all = [&](const json& from, const auto& vars) {
        for (const Var& v : vars)
            add(env, v.name, str(from, v.field));
    };
    add_all(e, event_vars);
    if (e.contains("key")) {
        const json& k = e["key"];
        add_all(k, key_vars);
        if (!e.contains("reader"))
            add(env, "UKEY_READER", str(k, "reader"));
    }
    if (e.contains("certificate"))
        add_all(e["certificate"], cert_vars);
    add_all(e, detail_vars);
    // One environment string may be at most 128 KiB (MAX_ARG_STRLEN): a Key
    // with many certificates makes a bigger event; then the hook gets the
    // other variables only.
    // Its strings are JSON-escaped; printable_json leaves no DEL, C1 or bidi
    // override raw either (the same document).
    if (std::string dump = escape::printable_json(e.dump(-1, ' ', false, json::error_handler_t::replace));
        dump.size() < 120 * 1024)
        env.push_back("UKEY_EVENT_JSON=" + dump);
    return env;
}

void Hooks::fire(const json& event)
{
    const std::string name = str(event, "event");
    for (const auto& h : hooks_) {
        if (!h.events.empty() && std::find(h.events.begin(), h.events.end(), name) == h.events.end())
            continue;
        run(h.command, hook_environment(event), h.timeout_s, "hook " + h.command[0] + " (" + name + ")");
    }
}

void Hooks::run(std::vector<std::string> argv, std::vector<std::string> env, double timeout_s, std::string what,
               Done done)
{
    Job j{std::move(argv), std::move(env), timeout_s, std::move(what), std::move(done)};
    if (running_.size() < max_running) {
        start(std::move(j));
    } else if (queue_.size() < max_queued) {
        queue_.push_back(std::move(j));
    } else {
        log::error("ukeyd: " + j.what + " dropped: " + std::to_string(max_queued) +
                   " hooks are already waiting (are the hooks hanging?)");
        if (j.done)
            j.done(-1);
    }
}

void Hooks::start(Job j)
{
    // Checked at every run, not once at load: the file may change hands.
    // A hook writable by another user would run his code as ukeyd's user.
    if (auto file = trusted_file(j.argv.empty() ? "" : j.argv[0], "hook command"); !file && is_refusal(file.error())) {
        log::error("ukeyd: " + j.what + " not run: " + file.error().message);
        if (j.done)
            j.done(-1);
        return;
    }
    Spawned sp = spawn(j.argv, &j.env, false, true);
    const pid_t pid = sp.pid;
    if (pid < 0) {
        log::error("ukeyd: " + j.what + " could not be started: " + strerror(sp.error));
        if (j.done)
            j.done(-1);
        return;
    }
    const int64_t now = mono_ms();
    const int64_t deadline = now + int64_t(j.timeout_s * 1000);
    running_[pid] = Running{std::move(j.what), deadline, deadline + 2000, false, std::move(j.done)};
    log::debug("ukeyd: started " + running_[pid].what + " as pid " + std::to_string(pid));
}

void Hooks::start_queued()
{
    while (running_.size() < max_running && !queue_.empty()) {
        Job j = std::move(queue_.front());
        queue_.pop_front();
        start(std::move(j));
    }
}

bool Hooks::on_exit(pid_t pid, int status)
{
    auto it = running_.find(pid);
    if (it == running_.end())
        return false;
    const Running& r = it->second;
    if (r.termed)
        log::error("ukeyd: " + r.what + " took longer than its timeout and was stopped");
    else if (WIFSIGNALED(status))
        log::error("ukeyd: " + r.what + " was killed by " + strsignal(WTERMSIG(status)));
    else if (WEXITSTATUS(status) != 0)
        log::error("ukeyd: " + r.what + " failed with exit code " + std::to_string(WEXITSTATUS(status)));
    else
        log::debug("ukeyd: " + r.what + " done");
    Done done = std::move(it->second.done);
    running_.erase(it);
    // After the erase: the callback may start new commands.
    if (done)
        done(status);
    start_queued();
    return true;
}

void Hooks::on_tick(int64_t mono)
{
    for (auto& [pid, r] : running_) {
        if (!r.termed && mono >= r.deadline) {
            r.termed = true;
            kill(-pid, SIGTERM);
        } else if (r.termed && mono >= r.kill_at) {
            kill(-pid, SIGKILL);
            r.kill_at = INT64_MAX;
        }
    }
}

int64_t Hooks::next_deadline() const
{
    int64_t d = INT64_MAX;
    for (const auto& [pid, r] : running_)
        d = std::min(d, r.termed ? r.kill_at : r.deadline);
    return d;
}

void Hooks::stop_all(int grace_ms)
{
    queue_.clear();
    for (const auto& [pid, r] : running_)
        kill(-pid, SIGTERM);
    const int64_t until = mono_ms() + grace_ms;
    while (!running_.empty()) {
        int status = 0;
        pid_t pid = waitpid(-1, &status, WNOHANG);
        if (pid > 0) {
            running_.erase(pid);
            continue;
        }
        if (pid < 0 && errno == ECHILD)
            break;
        if (mono_ms() >= until) {
            for (const auto& [p, r] : running_)
                kill(-p, SIGKILL);
            for (const auto& [p, r] : running_)
                waitpid(p, nullptr, 0);
            break;
        }
        usleep(10000);
    }
    running_.clear();
}

} // namespace ukey::daemon
