#include "token/config.h"

#include "config_cases.h"

#include <gtest/gtest.h>

#include <cstdlib>

using ukey::parse_config;
using ukey::PinCounter;

namespace {

using config_cases::one_backend;

std::string error_of(const std::string& text)
{
    return config_cases::error_of(parse_config, text);
}

} // namespace

TEST(Config, MinimalConfigGetsDefaults)
{
    auto r = parse_config(one_backend, "x.conf");
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_TRUE(r->state_dir.is_absolute());
    EXPECT_TRUE(r->state_dir.string().ends_with("/.local/state/ukey")) << r->state_dir;
    ASSERT_EQ(r->backends.size(), 1u);
    EXPECT_EQ(r->backends[0].name, "softhsm");
    EXPECT_EQ(r->backends[0].pin_counter, PinCounter::ukey);
    EXPECT_FALSE(r->backends[0].optional);
    EXPECT_EQ(r->log.level, ukey::log::Level::warning);
}

TEST(Config, FullConfig)
{
    auto r = parse_config(R"(
state_dir = "/srv/ukey"
[log]
level = "debug"
stderr = false
syslog = true
[[backend]]
name = "vendor"
module = "/opt/vendor/libp11.so"
pin_counter = "token"
optional = true
[[backend]]
name = "softhsm"
module = "libsofthsm2.so"
)",
                          "x.conf");
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->state_dir, "/srv/ukey");
    EXPECT_EQ(r->log.level, ukey::log::Level::debug);
    EXPECT_FALSE(r->log.to_stderr);
    ASSERT_EQ(r->backends.size(), 2u);
    EXPECT_EQ(r->backends[0].pin_counter, PinCounter::token);
    EXPECT_TRUE(r->backends[0].fixes); // the default
    EXPECT_TRUE(r->backends[0].optional);
    // A bare name is looked up in the system's PKCS#11 module folder, never
    // the current folder.
    EXPECT_EQ(r->backends[1].module, (ukey::system_module_dir() / "libsofthsm2.so").string());
}

TEST(Config, RelativeModulePathIsAnError)
{
    for (const char* m : {"lib/evil.so", "./evil.so", "../x/evil.so"})
        EXPECT_NE(error_of(std::string("[[backend]]\nname = \"b\"\nmodule = \"") + m + "\"\n")
                      .find("module must be an absolute path, or a bare file name in " +
                            ukey::system_module_dir().string()),
                  std::string::npos)
            << m;
}

TEST(Config, ErrorsNameTheFileAndTheProblem)
{
    EXPECT_NE(error_of("state_dir = ").find("/etc/ukey/ukey.conf: line 1"), std::string::npos);
    EXPECT_NE(error_of("state_dir = \"/x\"").find("no [[backend]]"), std::string::npos);
    EXPECT_NE(error_of(std::string(one_backend) + "modul = \"x\"\n").find("unknown key 'modul'"), std::string::npos);
    EXPECT_NE(error_of("state_dir = \"rel\"\n" + std::string(one_backend)).find("absolute"), std::string::npos);
    EXPECT_NE(error_of("state_dir = 5\n" + std::string(one_backend)).find("wrong type"), std::string::npos);
    EXPECT_NE(error_of(std::string(one_backend) + one_backend).find("used twice"), std::string::npos);
    EXPECT_NE(error_of("[[backend]]\nname = \"a\"\n").find("module is missing"), std::string::npos);
    EXPECT_NE(error_of("[[backend]]\nname = \"a b\"\nmodule=\"m\"\n").find("name must be"), std::string::npos);
    EXPECT_NE(error_of(std::string(one_backend) + "pin_counter = \"card\"\n").find("pin_counter must be"),
              std::string::npos);
    EXPECT_NE(error_of(std::string(one_backend) + "optional = \"yes\"\n").find("wrong type"), std::string::npos);
    EXPECT_NE(error_of("[log]\nlevel = \"loud\"\n" + std::string(one_backend)).find("level must be"),
              std::string::npos);
    std::string many;
    for (int i = 0; i < 17; ++i)
        many += "[[backend]]\nname = \"b" + std::to_string(i) + "\"\nmodule = \"m\"\n";
    EXPECT_NE(error_of(many).find("at most 16"), std::string::npos);
}

TEST(Config, MissingFileSaysWhatToDo)
{
    auto r = ukey::load_config("/nonexistent/ukey.conf");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().rv, static_cast<CK_RV>(CKR_FUNCTION_FAILED));
    EXPECT_NE(r.error().message.find("UKEY_CONF"), std::string::npos);
}

TEST(Config, TildeIsTheUsersHome)
{
    auto r = parse_config("state_dir = \"~/keys\"\n" + std::string(one_backend), "x.conf");
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_TRUE(r->state_dir.is_absolute());
    EXPECT_EQ(r->state_dir.filename(), "keys");
}

TEST(Config, PathFromEnvironment)
{
    setenv("UKEY_CONF", "/tmp/some.conf", 1);
    EXPECT_EQ(ukey::config_path(), "/tmp/some.conf");
    unsetenv("UKEY_CONF");
    EXPECT_EQ(ukey::config_path(), "/etc/ukey/ukey.conf");
}

TEST(Config, TheModuleSkipsTheToolsSections)
{
    // Their keys are the tools' to check (tests/unit/tool_config_test.cpp);
    // of [daemon] the module reads the socket only.
    auto r = parse_config(std::string(one_backend) + R"(
[daemon]
socket = "/tmp/x/ukeyd.sock"
rescn_interval = 1
[expiry]
thresholds = [0]
[[hook]]
command = ["logger"]
[renewal]
treshold = 3
)",
                          "x.conf");
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->daemon_socket, "/tmp/x/ukeyd.sock");
    EXPECT_EQ(parse_config(one_backend, "x.conf")->daemon_socket, "/run/ukey/ukeyd.sock");
    const std::string b = one_backend;
    EXPECT_NE(error_of(b + "[daemon]\nsocket = \"relative.sock\"\n").find("absolute"), std::string::npos);
    EXPECT_NE(error_of("daemon = 1\n" + b).find("[daemon] must be a table"), std::string::npos);
    EXPECT_NE(error_of(b + "[deamon]\n").find("unknown key 'deamon' at top level"), std::string::npos);
}

TEST(Config, TheShippedConfigIsValid)
{
    auto r = ukey::load_config(UKEY_SHIPPED_CONFIG);
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->daemon_socket, "/run/ukey/ukeyd.sock");
    EXPECT_EQ(r->backends.size(), 1u);
}

TEST(Config, AuditDefaultsFollowTheStateFolder)
{
    auto r = parse_config("state_dir = \"/srv/ukey\"\n" + std::string(one_backend), "x.conf");
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_TRUE(r->audit.enabled);
    EXPECT_EQ(r->audit.dir, "/srv/ukey/audit");
    EXPECT_EQ(r->audit.max_bytes, 1024u * 1024u);
    EXPECT_EQ(r->audit.keep, 4u);
}

TEST(Config, AuditSection)
{
    auto r = parse_config(std::string(one_backend) +
                              "[audit]\nenabled = false\npath = \"/var/log/ukey\"\nmax_bytes = 65536\nkeep = 0\n",
                          "x.conf");
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_FALSE(r->audit.enabled);
    EXPECT_EQ(r->audit.dir, "/var/log/ukey");
    EXPECT_EQ(r->audit.max_bytes, 65536u);
    EXPECT_EQ(r->audit.keep, 0u);
}

TEST(Config, AuditErrorsNameTheKeyAndLine)
{
    const std::string b = one_backend;
    auto has = [](const std::string& msg, const std::string& what) {
        return msg.find(what) != std::string::npos && msg.find("/etc/ukey/ukey.conf") != std::string::npos;
    };
    EXPECT_PRED2(has, error_of(b + "[audit]\nenable = true\n"), "unknown key 'enable' in [audit] (line 6)");
    EXPECT_PRED2(has, error_of(b + "[audit]\nenabled = \"yes\"\n"), "key 'enabled' in [audit] has the wrong type");
    EXPECT_PRED2(has, error_of(b + "[audit]\nkeep = 2.5\n"), "key 'keep' in [audit] has the wrong type");
    EXPECT_PRED2(has, error_of(b + "[audit]\nmax_bytes = \"1M\"\n"), "key 'max_bytes' in [audit] has the wrong type");
    EXPECT_PRED2(has, error_of(b + "[audit]\npath = \"audit\"\n"), "[audit] path must be an absolute path");
    EXPECT_PRED2(has, error_of(b + "[audit]\nmax_bytes = 100\n"), "[audit] max_bytes must be between 4096 and");
    EXPECT_PRED2(has, error_of(b + "[audit]\nmax_bytes = 9999999999999\n"), "max_bytes must be between");
    EXPECT_PRED2(has, error_of(b + "[audit]\nkeep = 101\n"), "[audit] keep must be between 0 and 100 (line 6)");
    EXPECT_PRED2(has, error_of(b + "[audit]\nkeep = -1\n"), "keep must be between");
    EXPECT_PRED2(has, error_of("audit = 1\n" + b), "[audit] must be a table");
}

TEST(Config, PinAttemptWait)
{
    auto r = parse_config(one_backend, "x.conf");
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->pin_attempt_wait, std::chrono::seconds(30));
    r = parse_config(std::string(one_backend) + "[pin]\nattempt_wait = 5\n", "x.conf");
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->pin_attempt_wait, std::chrono::seconds(5));
    for (const char* bad : {"0", "601", "-3"}) {
        r = parse_config(std::string(one_backend) + "[pin]\nattempt_wait = " + bad + "\n", "x.conf");
        ASSERT_FALSE(r) << bad;
        EXPECT_NE(r.error().message.find("[pin] attempt_wait must be between 1 and 600 seconds"), std::string::npos)
            << r.error().message;
    }
}

// TOML allows characters beyond ASCII only in strings and comments; toml++
// 3.3 reaches __builtin_unreachable() on most of them elsewhere (the config
// fuzzer's second finding, corpus/config/toml-unreachable-non-ascii-key).
TEST(Config, NonAsciiOutsideStringsAndCommentsIsRefusedWithItsLine)
{
    EXPECT_EQ("config /etc/ukey/ukey.conf: line 1: the character U+00CF may only be inside a quoted value or a "
              "comment (a full-width character from an input method? type it again in ASCII)",
              error_of("spate_dir\xc3\x8fg=true\n"));
    // A full-width '=' (U+FF1D), as a Chinese input method types it.
    EXPECT_EQ(0u, error_of(std::string(one_backend) + "\n[log]\nlevel \xef\xbc\x9d \"info\"\n")
                      .find("config /etc/ukey/ukey.conf: line 7: the character U+FF1D may only be inside"));
    EXPECT_NE(std::string::npos, error_of("name = 1\n\xff\n").find("line 2: the character byte 0xFF"));
}

TEST(Config, NonAsciiInStringsAndCommentsIsFine)
{
    const std::string text = "\xef\xbb\xbf# \xe4\xb8\xad\xe6\x96\x87 comment\n"
                             "state_dir = \"/srv/\xe5\xaf\x86\xe9\x92\xa5\"  # \xe5\xaf\x86\n"
                             "[[backend]]\nname = \"soft\"\nmodule = '/opt/\xe5\xaf\x86/a.so'\n"
                             "[log]\nlevel = \"\"\"info\"\"\"\n"
                             "# '''\xe5\xaf\x86\n";
    auto r = parse_config(text, "x.conf");
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ("/opt/\xe5\xaf\x86/a.so", r->backends.at(0).module);
    EXPECT_EQ("/srv/\xe5\xaf\x86\xe9\x92\xa5", r->state_dir.string());
}
