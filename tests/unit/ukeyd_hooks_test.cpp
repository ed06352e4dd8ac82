#include "clock.h"
#include "hooks.h"

#include "ukeytest/files.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
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

// Reaps children the way the daemon's SIGCHLD handler does, until `done`
// (or limit_ms: a bound for a hook that never ends, not a delay).
template <class F>
void reap_until(Hooks& h, F done, int64_t limit_ms = 30000)
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

// A Key's strings reach hooks escaped (docs/ukeyd.md, "Hooks"): no control
// character, C1, bidi override or invalid UTF-8 in any variable; the JSON
// keeps the exact value, JSON-escaped.
TEST(Hooks, EnvironmentValuesAreEscaped)
{
    const std::string label = "\x1b]52;c;ZXZpbA==\x07\n ukey: fake \xc2\x9b\xe2\x80\xae";
    json e{{"event", "key-inserted"},
           {"key", {{"label", label}, {"serial", "\xff\xfe\xd6\xd0"}, {"reader", "\xe4\xb8\xad\x7f"}}},
           {"certificate", {{"subject", "CN=a\rb"}}}};
    auto env = hook_environment(e);
    EXPECT_TRUE(has(env, "UKEY_TOKEN_LABEL=\\x1b]52;c;ZXZpbA==\\x07\\x0a ukey: fake \\u009b\\u202e"));
    EXPECT_TRUE(has(env, "UKEY_TOKEN_SERIAL=\\xff\\xfe\\xd6\\xd0"));
    EXPECT_TRUE(has(env, "UKEY_READER=\xe4\xb8\xad\\x7f")); // Chinese stays Chinese
    EXPECT_TRUE(has(env, "UKEY_CERT_SUBJECT=CN=a\\x0db"));
    for (const auto& kv : env)
        for (std::size_t i = 0; i < kv.size(); ++i) {
            const unsigned char c = kv[i];
            EXPECT_TRUE(c >= 0x20 && c != 0x7f) << kv;
            if (c == 0xc2 && i + 1 < kv.size()) {
                EXPECT_FALSE(static_cast<unsigned char>(kv[i + 1]) <= 0x9f) << kv; // no C1
            }
        }
    auto j = std::find_if(env.begin(), env.end(), [](const auto& kv) { return kv.rfind("UKEY_EVENT_JSON=", 0) == 0; });
    ASSERT_NE(j, env.end());
    json back = json::parse(j->substr(16));
    EXPECT_EQ(back["key"]["label"], label);
    EXPECT_EQ(back["key"]["serial"].get<std::string>().find("\xef\xbf\xbd"), 0u); // invalid UTF-8: U+FFFD
}

TEST(Hooks, RunWithoutAShellAndOnlyForTheirEvents)
{
    ukeytest::TempDir tmp("/tmp", "ukeyd-hooks-");
    const std::string dir = tmp.path().string();
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
    // Stopped at its 1 s timeout: not before, and long before the 100 s the
    // hook would run (30 s: a busy machine's delay, never a missed timeout).
    std::printf("the hanging hook was stopped after %lld ms (timeout 1 s)\n", static_cast<long long>(took));
    EXPECT_GE(took, 900);
    EXPECT_LT(took, 30000);
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
