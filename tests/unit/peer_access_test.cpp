// Service mode's access rules (token/peer_access.*) and the config they read.
#include "token/config.h"
#include "token/peer_access.h"

#include "config_cases.h"

#include <gtest/gtest.h>

#include <grp.h>
#include <pwd.h>

using namespace ukey;

TEST(PeerAccess, NumericIdsAreDecimalAndNeverMinusOne)
{
    EXPECT_EQ(numeric_id("0"), 0UL);
    EXPECT_EQ(numeric_id("7201"), 7201UL);
    EXPECT_EQ(numeric_id("4294967294"), 4294967294UL);
    EXPECT_FALSE(numeric_id("4294967295")); // (uid_t)-1: "no change" to setresuid
    EXPECT_FALSE(numeric_id("99999999999"));
    for (const char* bad : {"", "-1", "+5", " 5", "5 ", "0x10", "1e3", "ab"})
        EXPECT_FALSE(numeric_id(bad)) << bad;
}

TEST(PeerAccess, ListsTakeNamesAndNumbers)
{
    const AccessList l({"root", "7201"}, {"7300"});
    EXPECT_FALSE(l.empty());
    EXPECT_TRUE(l.unknown().empty());
    EXPECT_TRUE(l.allows(0, 0));       // root by name
    EXPECT_TRUE(l.allows(7201, 7201)); // by uid
    EXPECT_TRUE(l.allows(7999, 7300)); // by primary gid
    EXPECT_FALSE(l.allows(7202, 7202));
}

TEST(PeerAccess, AnUnknownNameGivesNoOneAccess)
{
    const AccessList l({"no-such-user-ukey-test"}, {"no-such-group-ukey-test"});
    EXPECT_FALSE(l.empty()); // not "everyone": fail closed
    EXPECT_EQ(l.unknown().size(), 2u);
    EXPECT_FALSE(l.allows(0, 0));
    EXPECT_FALSE(l.allows(7201, 7201));
}

TEST(PeerAccess, SupplementaryGroupsComeFromTheUserDatabase)
{
    // root's primary group is 0; a list of group "root" by name allows uid 0
    // with any primary gid only through the user database.
    const group* g = getgrgid(0);
    ASSERT_NE(g, nullptr);
    const AccessList l({}, {g->gr_name});
    EXPECT_TRUE(l.allows(0, 12345));
    EXPECT_FALSE(l.allows(7201, 7201)); // no such user: only its primary gid counts
}

TEST(PeerAccess, BackendUsersAndServiceAdminGroupsAreRead)
{
    auto r = parse_config(R"(
[[backend]]
name = "a"
module = "/usr/lib/softhsm/libsofthsm2.so"
users = ["alice", "7201"]
groups = ["finance"]
[service]
admin_groups = ["ukey-admin"]
)",
                          "x.conf");
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->backends[0].users, (std::vector<std::string>{"alice", "7201"}));
    EXPECT_EQ(r->backends[0].groups, std::vector<std::string>{"finance"});
    EXPECT_EQ(r->service_admin_groups, std::vector<std::string>{"ukey-admin"});
    EXPECT_NE(config_cases::error_of(parse_config, std::string(config_cases::one_backend) + "users = \"alice\"\n")
                  .find("users"),
              std::string::npos);
}

TEST(PeerAccess, TwoBackendsOnOneModuleAreFound)
{
    auto r = parse_config(R"(
[[backend]]
name = "a"
module = "/usr/lib/softhsm/libsofthsm2.so"
[[backend]]
name = "b"
module = "/usr/lib/softhsm/../softhsm/libsofthsm2.so"
)",
                          "x.conf");
    ASSERT_TRUE(r) << r.error().message;
    const std::string twice = backends_sharing_a_module(*r);
    EXPECT_NE(twice.find("'a' and 'b'"), std::string::npos) << twice;
    r->backends.pop_back();
    EXPECT_EQ(backends_sharing_a_module(*r), "");
}
