// The tools' sections of the config (tools/common/tool_config.*).
#include "tool_config.h"

#include "config_cases.h"

#include <gtest/gtest.h>

using ukey::parse_tool_config;

namespace {

using config_cases::one_backend;

std::string error_of(const std::string& text)
{
    return config_cases::error_of(parse_tool_config, text);
}

} // namespace

TEST(ToolConfig, DaemonDefaults)
{
    auto r = parse_tool_config(one_backend, "x.conf");
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->daemon_socket, "/run/ukey/ukeyd.sock");
    EXPECT_TRUE(r->daemon.pcsc);
    EXPECT_EQ(r->daemon.rescan_interval_s, 10);
    EXPECT_EQ(r->daemon.expiry_thresholds, (std::vector<unsigned>{28, 7, 3, 2, 1}));
    EXPECT_TRUE(r->hooks.empty());
}

TEST(ToolConfig, DaemonExpiryAndHooks)
{
    auto r = parse_tool_config(std::string(one_backend) + R"(
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
    EXPECT_EQ(r->daemon_socket, "/tmp/x/ukeyd.sock");
    EXPECT_EQ(r->daemon.allow_groups, std::vector<std::string>{"ukey"});
    EXPECT_FALSE(r->daemon.pcsc);
    EXPECT_EQ(r->daemon.rescan_interval_s, 0.5);
    EXPECT_EQ(r->daemon.expiry_thresholds, (std::vector<unsigned>{30, 7, 1})); // sorted, largest first
    EXPECT_EQ(r->daemon.expiry_check_interval_s, 60);
    ASSERT_EQ(r->hooks.size(), 1u);
    EXPECT_EQ(r->hooks[0].command.size(), 3u);
    EXPECT_EQ(r->hooks[0].timeout_s, 5);
}

TEST(ToolConfig, DaemonErrorsSayWhatIsWrong)
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

TEST(ToolConfig, RenewalDefaults)
{
    auto r = parse_tool_config(one_backend, "x.conf");
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

TEST(ToolConfig, RenewalCas)
{
    auto r = parse_tool_config(std::string(one_backend) + two_cas, "x.conf");
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

TEST(ToolConfig, RenewalErrorsSayWhatIsWrong)
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

TEST(ToolConfig, GlobMatch)
{
    EXPECT_TRUE(ukey::glob_match("*", ""));
    EXPECT_TRUE(ukey::glob_match("lab-*", "lab-1"));
    EXPECT_TRUE(ukey::glob_match("a?c*", "abcdef"));
    EXPECT_FALSE(ukey::glob_match("lab-*", "xlab-1"));
    EXPECT_FALSE(ukey::glob_match("a?c", "ac"));
    EXPECT_TRUE(ukey::glob_match("*b*b", "abxbb"));
}

TEST(ToolConfig, ErrorsNameTheFileAndLine)
{
    const std::string e = error_of(std::string(one_backend) + "[daemon]\nrescn_interval = 1\n");
    EXPECT_NE(e.find("config /etc/ukey/ukey.conf: "), std::string::npos) << e;
    EXPECT_NE(e.find("(line 6)"), std::string::npos) << e;
}

TEST(ToolConfig, TheShippedConfigIsValid)
{
    auto r = ukey::load_tool_config(UKEY_SHIPPED_CONFIG);
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->daemon_socket, "/run/ukey/ukeyd.sock");
    EXPECT_EQ(r->daemon.expiry_thresholds, (std::vector<unsigned>{28, 7, 3, 2, 1}));
    EXPECT_EQ(r->backends.size(), 1u);
}

TEST(ToolConfig, ServiceDefaultsAndValues)
{
    auto r = parse_tool_config(one_backend, "x.conf");
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_FALSE(r->service.enabled);
    EXPECT_EQ(r->service.socket, "/run/ukey/pkcs11");
    EXPECT_EQ(r->service.user, "ukey");
    EXPECT_FALSE(ukey::service_socket_for_me(*r)); // not enabled
    r = parse_tool_config(std::string(one_backend) + R"(
[service]
enabled = true
socket = "/tmp/x/pkcs11"
user = "7100:7100"
admin_groups = ["wheel"]
max_per_user = 4
)",
                          "x.conf");
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_TRUE(r->service.enabled);
    EXPECT_EQ(r->service.max_per_user, 4u);
    EXPECT_EQ(r->service_admin_groups, std::vector<std::string>{"wheel"}); // the module's part
    const auto ids = ukey::service_user_ids(r->service.user);
    ASSERT_TRUE(ids);
    EXPECT_EQ(ids->uid, 7100UL);
    EXPECT_EQ(ids->gid, 7100UL);
    // Anyone but the service user goes through the service.
    EXPECT_EQ(ukey::service_socket_for_me(*r), std::filesystem::path("/tmp/x/pkcs11"));
}

TEST(ToolConfig, ServiceRefusals)
{
    const std::string base = std::string(one_backend) + "\n[service]\n";
    EXPECT_NE(error_of(base + "user = \"root\"\n").find("other than root"), std::string::npos);
    EXPECT_NE(error_of(base + "user = \"0:5\"\n").find("other than root"), std::string::npos);
    EXPECT_NE(error_of(base + "socket = \"run/pkcs11\"\n").find("absolute"), std::string::npos);
    EXPECT_NE(error_of(base + "max_per_user = 0\n").find("max_per_user"), std::string::npos);
    EXPECT_NE(error_of(base + "enabled = true\nsocket = \"/run/ukey/ukeyd.sock\"\n").find("differ"),
              std::string::npos);
    EXPECT_NE(error_of(base + "colour = 1\n").find("colour"), std::string::npos);
    EXPECT_FALSE(ukey::service_user_ids("no-such-user-ukey-test"));
}
