#include "clock.h"
#include "hooks.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include <sys/wait.h>
#include <unistd.h>

using nlohmann::json;
using ukey::daemon::Hooks;
using ukey::daemon::hook_environment;

namespace {

bool has(const std::vector<std::string>& env, const std::string& kv)
{
    return std::find(env.begin(), env.end(), kv) != env.end();
}

// Reaps children the way the daemon's SIGCHLD handler does, until `done`.
template <class F>
void reap_until(Hooks& h, F done, int64_t limit_ms = 10000)
{
    const int64_t until = ukey::daemon::mono_ms() + limit_ms;
    while (!done() && ukey::daemon::mono_ms() < until) {
        int status = 0;
        pid_t pid = waitpid(-1, &status, WNOHANG);
        if (pid > 0)
            h.on_exit(pid, status);
        h.on_tick(ukey::daemon::mono_ms());
        usleep(5000);
    }
}

std::string slurp(const std::string& path)
{
    std::ifstream in(path);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

} // namespace

TEST(Hooks, EnvironmentCarriesTheDetails)
{
    json e{{"event", "cert-expiring"},
           {"time", "2026-11-21T12:00:00.000Z"},
           {"days_left", 6},
           {"threshold", 7},
           {"key",
            {{"id", "softhsm/M/V/01"}, {"label", "Alice"}, {"serial", "01"}, {"backend", "softhsm"},
             {"slot_id", 42}, {"reader", "Virtual PCD 00 00"}}},
           {"certificate", {{"subject", "CN=Alice"}, {"id", "0a"}}}};
    auto env = hook_environment(e);
    EXPECT_TRUE(has(env, "UKEY_EVENT=cert-expiring"));
    EXPECT_TRUE(has(env, "UKEY_TOKEN_LABEL=Alice"));
    EXPECT_TRUE(has(env, "UKEY_TOKEN_SERIAL=01"));
    EXPECT_TRUE(has(env, "UKEY_SLOT_ID=42"));
    EXPECT_TRUE(has(env, "UKEY_READER=Virtual PCD 00 00"));
    EXPECT_TRUE(has(env, "UKEY_CERT_SUBJECT=CN=Alice"));
    EXPECT_TRUE(has(env, "UKEY_DAYS_LEFT=6"));
    EXPECT_TRUE(has(env, "UKEY_THRESHOLD=7"));
    // Nothing of the daemon's own environment leaks through.
    for (const auto& kv : env)
        EXPECT_TRUE(kv.rfind("UKEY_", 0) == 0 || kv.rfind("PATH=", 0) == 0) << kv;
}

TEST(Hooks, RunWithoutAShellAndOnlyForTheirEvents)
{
    char dir[] = "/tmp/ukeyd-hooks-XXXXXX";
    ASSERT_TRUE(mkdtemp(dir));
    const std::string out = std::string(dir) + "/out";
    Hooks h;
    // The label would run `touch` if a shell ever saw it.
    h.configure({ukey::HookConfig{{"key-inserted"}, {"/bin/sh", "-c", "printf '%s' \"$UKEY_TOKEN_LABEL\" > " + out}, 5}});
    h.fire(json{{"event", "key-removed"}, {"key", {{"label", "x"}}}});
    EXPECT_EQ(h.running(), 0u);
    const std::string label = "A; touch " + std::string(dir) + "/pwned";
    h.fire(json{{"event", "key-inserted"}, {"key", {{"label", label}}}});
    EXPECT_EQ(h.running(), 1u);
    reap_until(h, [&] { return h.running() == 0; });
    EXPECT_EQ(slurp(out), label);
    EXPECT_NE(access((std::string(dir) + "/pwned").c_str(), F_OK), 0);
    std::filesystem::remove_all(dir);
}

TEST(Hooks, TimeoutStopsAHangingHookAndItsChildren)
{
    Hooks h;
    h.configure({ukey::HookConfig{{}, {"/bin/sh", "-c", "sleep 100 & sleep 100"}, 1}});
    const int64_t t0 = ukey::daemon::mono_ms();
    h.fire(json{{"event", "key-inserted"}});
    ASSERT_EQ(h.running(), 1u);
    reap_until(h, [&] { return h.running() == 0; });
    const int64_t took = ukey::daemon::mono_ms() - t0;
    EXPECT_EQ(h.running(), 0u);
    EXPECT_GE(took, 900);
    EXPECT_LT(took, 5000);
}

TEST(Hooks, AMissingCommandIsLoggedNotFatal)
{
    Hooks h;
    h.configure({ukey::HookConfig{{}, {"/nonexistent/hook"}, 5}});
    h.fire(json{{"event", "key-inserted"}});
    reap_until(h, [&] { return h.running() == 0; });
    EXPECT_EQ(h.running(), 0u);
}

TEST(Hooks, BoundedConcurrencyAndQueue)
{
    Hooks h;
    h.configure({ukey::HookConfig{{}, {"/bin/sleep", "0.2"}, 5}});
    for (int i = 0; i < 20; ++i)
        h.fire(json{{"event", "key-inserted"}});
    EXPECT_EQ(h.running(), Hooks::max_running);
    EXPECT_EQ(h.queued(), 20 - Hooks::max_running);
    reap_until(h, [&] { return h.running() == 0 && h.queued() == 0; });
    EXPECT_EQ(h.queued(), 0u);
}
