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

} // namespace

std::vector<std::string> hook_environment(const json& e)
{
    std::vector<std::string> env{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"};
    add(env, "UKEY_EVENT", str(e, "event"));
    add(env, "UKEY_TIME", str(e, "time"));
    add(env, "UKEY_READER", str(e, "reader"));
    if (e.contains("key")) {
        const json& k = e["key"];
        add(env, "UKEY_KEY_ID", str(k, "id"));
        add(env, "UKEY_KEY_SOURCE", str(k, "source"));
        add(env, "UKEY_SLOT_ID", str(k, "slot_id"));
        add(env, "UKEY_BACKEND", str(k, "backend"));
        add(env, "UKEY_TOKEN_LABEL", str(k, "label"));
        add(env, "UKEY_TOKEN_SERIAL", str(k, "serial"));
        add(env, "UKEY_TOKEN_MANUFACTURER", str(k, "manufacturer"));
        add(env, "UKEY_TOKEN_MODEL", str(k, "model"));
        if (!e.contains("reader"))
            add(env, "UKEY_READER", str(k, "reader"));
        add(env, "UKEY_ATR", str(k, "atr"));
    }
    if (e.contains("certificate")) {
        const json& c = e["certificate"];
        add(env, "UKEY_CERT_ID", str(c, "id"));
        add(env, "UKEY_CERT_LABEL", str(c, "label"));
        add(env, "UKEY_CERT_SUBJECT", str(c, "subject"));
        add(env, "UKEY_CERT_NOT_AFTER", str(c, "not_after"));
        add(env, "UKEY_CERT_FINGERPRINT", str(c, "fingerprint"));
    }
    add(env, "UKEY_DAYS_LEFT", str(e, "days_left"));
    add(env, "UKEY_THRESHOLD", str(e, "threshold"));
    add(env, "UKEY_PIN", str(e, "which"));
    add(env, "UKEY_ERROR", str(e, "error"));
    add(env, "UKEY_ERROR_CODE", str(e, "code"));
    add(env, "UKEY_MESSAGE", str(e, "message"));
    add(env, "UKEY_RENEWAL_STATE", str(e, "state"));
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
