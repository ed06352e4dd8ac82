// Hooks: commands from the config run on chosen events, without a shell,
// with the event's details in UKEY_* environment variables, a timeout, and
// every failure logged (docs/ukeyd.md). What pkcs11_eventmgr does, minus its
// polling.
#pragma once

#include "tool_config.h"

#include <nlohmann/json.hpp>

#include <sys/types.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace ukey::daemon {

// The environment a hook gets for `event` (also used by tests).
std::vector<std::string> hook_environment(const nlohmann::json& event);

class Hooks {
public:
    void configure(std::vector<HookConfig> hooks) { hooks_ = std::move(hooks); }
    // Starts every hook that wants this event (queued beyond max_running).
    void fire(const nlohmann::json& event);
    // Runs a command like a hook (the renewal flow); `what` names it in logs;
    // `done` gets its wait status (-1: it could not be started).
    using Done = std::function<void(int status)>;
    void run(std::vector<std::string> argv, std::vector<std::string> env, double timeout_s, std::string what,
             Done done = {});
    // A child was reaped; true if it was one of ours.
    bool on_exit(pid_t pid, int status);
    // Timeouts: SIGTERM at the deadline, SIGKILL 2 s later.
    void on_tick(int64_t mono);
    int64_t next_deadline() const; // INT64_MAX if none
    std::size_t running() const { return running_.size(); }
    std::size_t queued() const { return queue_.size(); }
    // Shutdown: SIGTERM to all, SIGKILL after `grace_ms`, reaped.
    void stop_all(int grace_ms);

    static constexpr std::size_t max_running = 8;
    static constexpr std::size_t max_queued = 256;

private:
    struct Job {
        std::vector<std::string> argv, env;
        double timeout_s;
        std::string what;
        Done done;
    };
    struct Running {
        std::string what;
        int64_t deadline, kill_at;
        bool termed = false;
        Done done;
    };
    void start(Job j);
    void start_queued();
    std::vector<HookConfig> hooks_;
    std::deque<Job> queue_;
    std::map<pid_t, Running> running_;
};

} // namespace ukey::daemon
