#include "token/config.h"

#include <gtest/gtest.h>

#include <cstdlib>

using ukey::parse_config;
using ukey::PinCounter;

namespace {

std::string error_of(const std::string& text)
{
    auto r = parse_config(text, "/etc/ukey/ukey.conf");
    EXPECT_FALSE(r) << "expected an error for:\n" << text;
    return r ? std::string() : r.error().message;
}

const char* one_backend = R"(
[[backend]]
name = "softhsm"
module = "/usr/lib/softhsm/libsofthsm2.so"
)";

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

TEST(Config, DaemonDefaults)
{
    auto r = parse_config(one_backend, "x.conf");
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->daemon.socket, "/run/ukey/ukeyd.sock");
    EXPECT_TRUE(r->daemon.pcsc);
    EXPECT_EQ(r->daemon.rescan_interval_s, 10);
    EXPECT_EQ(r->daemon.expiry_thresholds, (std::vector<unsigned>{28, 7, 3, 2, 1}));
    EXPECT_TRUE(r->hooks.empty());
}

TEST(Config, DaemonExpiryAndHooks)
{
    auto r = parse_config(std::string(one_backend) + R"(
[daemon]
socket = "/tmp/x/ukeyd.sock"
allow_groups = ["ukey"]
pcsc = false
rescan_interval = 0.5
[expiry]
thresholds = [1, 30, 7, 7]
check_interval = 60
[[hook]]
events = ["key-inserted", "cert-expiring"]
command = ["/usr/bin/logger", "-t", "ukey"]
timeout = 5
)",
                          "x.conf");
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->daemon.socket, "/tmp/x/ukeyd.sock");
    EXPECT_EQ(r->daemon.allow_groups, std::vector<std::string>{"ukey"});
    EXPECT_FALSE(r->daemon.pcsc);
    EXPECT_EQ(r->daemon.rescan_interval_s, 0.5);
    EXPECT_EQ(r->daemon.expiry_thresholds, (std::vector<unsigned>{30, 7, 1})); // sorted, largest first
    EXPECT_EQ(r->daemon.expiry_check_interval_s, 60);
    ASSERT_EQ(r->hooks.size(), 1u);
    EXPECT_EQ(r->hooks[0].command.size(), 3u);
    EXPECT_EQ(r->hooks[0].timeout_s, 5);
}

TEST(Config, DaemonErrorsSayWhatIsWrong)
{
    std::string b = one_backend;
    EXPECT_NE(error_of(b + "[daemon]\nsocket = \"relative.sock\"\n").find("absolute"), std::string::npos);
    EXPECT_NE(error_of(b + "[daemon]\nrescan_interval = -1\n").find("between"), std::string::npos);
    EXPECT_NE(error_of(b + "[daemon]\nrescn_interval = 1\n").find("unknown key 'rescn_interval'"), std::string::npos);
    EXPECT_NE(error_of(b + "[expiry]\nthresholds = [0]\n").find("whole days"), std::string::npos);
    EXPECT_NE(error_of(b + "[[hook]]\ncommand = [\"logger\"]\n").find("without a shell"), std::string::npos);
    EXPECT_NE(error_of(b + "[[hook]]\nevents = [\"key-inserterd\"]\ncommand = [\"/bin/true\"]\n")
                  .find("unknown event 'key-inserterd'"),
              std::string::npos);
    EXPECT_NE(error_of(b + "[[hook]]\ncommand = \"/bin/true\"\n").find("list of strings"), std::string::npos);
}

TEST(Config, RenewalDefaults)
{
    auto r = parse_config(one_backend, "x.conf");
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->renewal.threshold_days, 14u);
    EXPECT_TRUE(r->renewal.pin_file.empty());
    EXPECT_TRUE(r->renewal.ukey.empty());
    EXPECT_TRUE(r->renewal.cas.empty());
    EXPECT_EQ(ukey::renewal_ca_for(*r, "Alice", "1234", "CN=CA"), nullptr);
}

const char* two_cas = R"(
[renewal]
threshold = 10
pin_file = "/etc/ukey/renewal.pin"
ukey = "/usr/local/bin/ukey"
timeout = 60
[[renewal.ca]]
name = "lab"
url = "http://127.0.0.1:8080/scep"
fingerprint = "AB:CD:EF:01:23:45:67:89:ab:cd:ef:01:23:45:67:89:ab:cd:ef:01:23:45:67:89:ab:cd:ef:01:23:45:67:89"
keys = ["lab-*", "0042"]
issuer = "O=Lab"
threshold = 7
mode = "same-key"
keep_old = true
challenge_file = "/etc/ukey/lab.challenge"
[[renewal.ca]]
name = "corp"
url = "http://ca.example/cgi-bin/pkiclient.exe"
fingerprint = "0000000000000000000000000000000000000000000000000000000000000000"
)";

TEST(Config, RenewalCas)
{
    auto r = parse_config(std::string(one_backend) + two_cas, "x.conf");
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->renewal.threshold_days, 10u);
    EXPECT_EQ(r->renewal.pin_file, "/etc/ukey/renewal.pin");
    EXPECT_EQ(r->renewal.ukey, "/usr/local/bin/ukey");
    EXPECT_EQ(r->renewal.timeout_s, 60);
    ASSERT_EQ(r->renewal.cas.size(), 2u);
    const auto& lab = r->renewal.cas[0];
    EXPECT_EQ(lab.fingerprint, "abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789");
    EXPECT_EQ(lab.threshold_days, 7u);
    EXPECT_FALSE(lab.rekey);
    EXPECT_TRUE(lab.keep_old);
    EXPECT_EQ(lab.challenge_file, "/etc/ukey/lab.challenge");
    EXPECT_TRUE(r->renewal.cas[1].challenge_file.empty());
    EXPECT_TRUE(r->renewal.cas[1].rekey);
    EXPECT_EQ(r->renewal.cas[1].threshold_days, 0u);
    // First match wins; the lab CA only for its Keys and issuer.
    EXPECT_EQ(ukey::renewal_ca_for(*r, "lab-7", "9", "CN=x,O=Lab")->name, "lab");
    EXPECT_EQ(ukey::renewal_ca_for(*r, "Alice", "0042", "CN=x,O=Lab")->name, "lab");
    EXPECT_EQ(ukey::renewal_ca_for(*r, "lab-7", "9", "CN=x,O=Corp")->name, "corp");
    EXPECT_EQ(ukey::renewal_ca_for(*r, "Alice", "1", "CN=x")->name, "corp");
}

TEST(Config, RenewalErrorsSayWhatIsWrong)
{
    std::string b = std::string(one_backend) + "[renewal]\n";
    const std::string ca = "[[renewal.ca]]\nname = \"x\"\nurl = \"http://h/scep\"\nfingerprint = \"" +
                           std::string(64, 'a') + "\"\n";
    EXPECT_NE(error_of(b + "treshold = 3\n").find("unknown key 'treshold'"), std::string::npos);
    EXPECT_NE(error_of(b + "threshold = 0\n").find("whole days"), std::string::npos);
    EXPECT_NE(error_of(b + "pin_file = \"renewal.pin\"\n").find("absolute path"), std::string::npos);
    EXPECT_NE(error_of(b + "[[renewal.ca]]\nname = \"x\"\nurl = 5\n").find("wrong type"), std::string::npos);
    EXPECT_NE(error_of(std::string(one_backend) + "[[renewal.ca]]\nname = \"x\"\nurl = \"https://h/scep\"\n"
                                                  "fingerprint = \"" + std::string(64, 'a') + "\"\n")
                  .find("http://"),
              std::string::npos);
    EXPECT_NE(error_of(std::string(one_backend) + "[[renewal.ca]]\nname = \"x\"\nurl = \"http://h/scep\"\n"
                                                  "fingerprint = \"abcd\"\n")
                  .find("SHA-256"),
              std::string::npos);
    EXPECT_NE(error_of(b + ca + "challenge_file = \"x\"\n").find("absolute path"), std::string::npos);
    EXPECT_NE(error_of(b + ca + "mode = \"new\"\n").find("mode must be"), std::string::npos);
    EXPECT_NE(error_of(b + ca + ca).find("used twice"), std::string::npos);
    EXPECT_NE(error_of(b + ca + "kees = []\n").find("unknown key 'kees'"), std::string::npos);
    EXPECT_NE(error_of(b + "ca = 1\n").find("[[renewal.ca]]"), std::string::npos);
}

TEST(Config, GlobMatch)
{
    EXPECT_TRUE(ukey::glob_match("*", ""));
    EXPECT_TRUE(ukey::glob_match("lab-*", "lab-1"));
    EXPECT_TRUE(ukey::glob_match("a?c*", "abcdef"));
    EXPECT_FALSE(ukey::glob_match("lab-*", "xlab-1"));
    EXPECT_FALSE(ukey::glob_match("a?c", "ac"));
    EXPECT_TRUE(ukey::glob_match("*b*b", "abxbb"));
}

TEST(Config, TheShippedConfigIsValid)
{
    auto r = ukey::load_config(UKEY_SHIPPED_CONFIG);
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->daemon.socket, "/run/ukey/ukeyd.sock");
    EXPECT_EQ(r->daemon.expiry_thresholds, (std::vector<unsigned>{28, 7, 3, 2, 1}));
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
