// `ukey backend`'s pieces without a machine to change: ukey.conf edited as
// text (client/config_edit.h) and p11-kit's .module files read and
// overridden in folders of the test's own (client/p11kit_config.h). The
// CLI end to end, with p11-kit-proxy itself as the judge, is
// tests/cli/backend.sh.
#include "client/config_edit.h"
#include "client/p11kit_config.h"

#include <ukeytest/files.h>

#include <gtest/gtest.h>

#include <sys/stat.h>

using namespace ukey;
using namespace ukey::client;
namespace fs = std::filesystem;

namespace {

const fs::path source = "/etc/ukey/ukey.conf";

BackendConfig backend(const std::string& name, const std::string& module)
{
    BackendConfig b;
    b.name = name;
    b.module = module;
    return b;
}

std::vector<std::string> names(const std::string& text)
{
    auto cfg = parse_config(text, source);
    EXPECT_TRUE(cfg) << (cfg ? "" : cfg.error().message);
    std::vector<std::string> out;
    if (cfg)
        for (const auto& b : cfg->backends)
            out.push_back(b.name);
    return out;
}

const std::string shipped = "# the helpdesk's notes\n"
                            "state_dir = \"/var/lib/ukey\"\n\n"
                            "[[backend]]   # the bank's Keys\n"
                            "name = \"vendor\"\n"
                            "module = \"/usr/lib/vendor.so\"\n\n"
                            "[[backend]]\n"
                            "name = \"cards\"\n"
                            "module = \"/usr/lib/opensc.so\"\n"
                            "pin_counter = \"token\"\n\n"
                            "[daemon]\n"
                            "socket = \"/run/ukey/ukeyd.sock\"\n";

TEST(BackendConfigEdit, AddAppendsATableAndKeepsEverythingElse)
{
    BackendConfig b = backend("soft", "/usr/lib/softhsm/libsofthsm2.so");
    b.pin_counter = PinCounter::token;
    b.optional = true;
    b.removable = false;
    b.fixes = false;
    auto out = config_add_backend(shipped, source, b);
    ASSERT_TRUE(out) << out.error().message;
    EXPECT_EQ(shipped + "\n[[backend]]\nname = \"soft\"\nmodule = \"/usr/lib/softhsm/libsofthsm2.so\"\n"
                        "pin_counter = \"token\"\noptional = true\nremovable = false\nfixes = false\n",
              *out);
    EXPECT_EQ((std::vector<std::string>{"vendor", "cards", "soft"}), names(*out));
}

TEST(BackendConfigEdit, AddToNothingMakesAConfig)
{
    auto out = config_add_backend("", source, backend("soft", "/m.so"));
    ASSERT_TRUE(out) << out.error().message;
    EXPECT_EQ("[[backend]]\nname = \"soft\"\nmodule = \"/m.so\"\n", *out);
}

TEST(BackendConfigEdit, AModulePathWithQuotesAndControlsReadsBackTheSame)
{
    const std::string odd = "/opt/a \"b\" \\c\td/\x7f.so";
    auto out = config_add_backend("", source, backend("odd", odd));
    ASSERT_TRUE(out) << out.error().message;
    auto cfg = parse_config(*out, source);
    ASSERT_TRUE(cfg) << cfg.error().message;
    EXPECT_EQ(odd, cfg->backends.at(0).module);
}

TEST(BackendConfigEdit, AddRefusesATakenNameABadNameAndABrokenConfig)
{
    auto taken = config_add_backend(shipped, source, backend("cards", "/x.so"));
    ASSERT_FALSE(taken);
    EXPECT_EQ("a backend named 'cards' is already configured in /etc/ukey/ukey.conf", taken.error().message);
    auto bad = config_add_backend(shipped, source, backend("no spaces", "/x.so"));
    ASSERT_FALSE(bad);
    EXPECT_NE(std::string::npos, bad.error().message.find("name must be 1-32 letters")) << bad.error().message;
    auto relative = config_add_backend(shipped, source, backend("rel", "lib/x.so"));
    ASSERT_FALSE(relative);
    EXPECT_NE(std::string::npos, relative.error().message.find("module must be an absolute path"));
    auto broken = config_add_backend("state_dir = [\n", source, backend("x", "/x.so"));
    ASSERT_FALSE(broken);
    EXPECT_EQ(0u, broken.error().message.rfind("the config would not be valid: ", 0)) << broken.error().message;
}

TEST(BackendConfigEdit, RemoveCutsOneTableOnly)
{
    auto first = config_remove_backend(shipped, source, "vendor");
    ASSERT_TRUE(first) << first.error().message;
    EXPECT_EQ("# the helpdesk's notes\nstate_dir = \"/var/lib/ukey\"\n\n"
              "[[backend]]\nname = \"cards\"\nmodule = \"/usr/lib/opensc.so\"\npin_counter = \"token\"\n\n"
              "[daemon]\nsocket = \"/run/ukey/ukeyd.sock\"\n",
              *first);
    auto last = config_remove_backend(shipped, source, "cards");
    ASSERT_TRUE(last) << last.error().message;
    EXPECT_EQ((std::vector<std::string>{"vendor"}), names(*last));
    EXPECT_NE(std::string::npos, last->find("[daemon]\nsocket")) << *last;
}

TEST(BackendConfigEdit, RemoveRefusesAnUnknownNameAndTheLastBackend)
{
    auto unknown = config_remove_backend(shipped, source, "nope");
    ASSERT_FALSE(unknown);
    EXPECT_EQ("no backend named 'nope' is configured in /etc/ukey/ukey.conf", unknown.error().message);
    auto one = config_remove_backend(*config_remove_backend(shipped, source, "vendor"), source, "cards");
    ASSERT_FALSE(one);
    EXPECT_NE(std::string::npos, one.error().message.find("no [[backend]] is configured")) << one.error().message;
    // A commented-out table is no table.
    auto commented = config_remove_backend("# [[backend]]\n# name = \"x\"\n" + shipped, source, "x");
    EXPECT_FALSE(commented);
}

// Folders standing for p11-kit's: packages', administrator's; modules in lib/.
struct P11KitFolders : testing::Test {
    ukeytest::TempDir tmp{fs::temp_directory_path(), "ukey-p11kit-"};
    P11KitDirs dirs;
    fs::path lib;
    void SetUp() override
    {
        dirs.read = {tmp.path() / "share", tmp.path() / "etc"};
        dirs.write = tmp.path() / "etc";
        dirs.module_dir = tmp.path() / "lib";
        fs::create_directories(tmp.path() / "share");
        fs::create_directories(dirs.module_dir);
        lib = dirs.module_dir / "driver.so";
        ukeytest::write_file(lib, "not really a library", 0644);
    }
    void package(const std::string& name, const std::string& text)
    {
        ukeytest::write_file(tmp.path() / "share" / (name + ".module"), text, 0644);
    }
    P11KitRegistration only(const std::string& name)
    {
        for (const auto& r : p11kit_registrations(dirs))
            if (r.name == name)
                return r;
        ADD_FAILURE() << "no registration " << name;
        return {};
    }
};

TEST_F(P11KitFolders, RegistrationsAreMergedByPriorityAndResolved)
{
    package("driver", "# a package's\nmodule: driver.so\n");
    package("other", "module: /nowhere/other.so\ndisable-in: seahorse, p11-kit-proxy\n");
    package("options-only", "priority: 3\n");
    ukeytest::write_file(tmp.path() / "share" / "README", "module: driver.so\n", 0644); // not a .module file
    ukeytest::write_file(tmp.path() / "share" / ".hidden.module", "module: driver.so\n", 0644);
    const auto regs = p11kit_registrations(dirs);
    std::string got;
    for (const auto& r : regs)
        got += r.name + " ";
    ASSERT_EQ(2u, regs.size()) << got;
    EXPECT_EQ("driver", regs[0].name);
    EXPECT_EQ(fs::canonical(lib).string(), regs[0].library);
    EXPECT_TRUE(regs[0].enabled);
    EXPECT_EQ("other", regs[1].name);
    EXPECT_EQ("", regs[1].library);
    EXPECT_FALSE(regs[1].enabled);
    // The administrator's file overrides the package's settings.
    fs::create_directories(dirs.write);
    ukeytest::write_file(dirs.write / "driver.module", "enable-in: seahorse\n", 0644);
    EXPECT_FALSE(only("driver").enabled);
    EXPECT_EQ(dirs.write / "driver.module", only("driver").file);
}

TEST_F(P11KitFolders, HideWritesAnOverrideReadableByAllAndUnhideDeletesIt)
{
    package("driver", "module: driver.so\n");
    const mode_t old = umask(077);
    auto h = hide_registration(dirs, only("driver"), "bank");
    umask(old);
    ASSERT_TRUE(h) << h.error().message;
    struct stat st {};
    ASSERT_EQ(0, stat((dirs.write / "driver.module").c_str(), &st));
    EXPECT_EQ(0644u, st.st_mode & 07777);
    ASSERT_EQ(0, stat(dirs.write.c_str(), &st));
    EXPECT_EQ(0755u, st.st_mode & 07777);
    const auto r = only("driver");
    EXPECT_FALSE(r.enabled);
    EXPECT_TRUE(r.hidden_by_ukey);
    EXPECT_EQ("bank", r.hidden_for);
    EXPECT_NE(std::string::npos, ukeytest::read_file(dirs.write / "driver.module").find("\nmodule: driver.so\nenable-in:\n"));
    ASSERT_TRUE(hide_registration(dirs, r, "bank")); // already: nothing to do
    ASSERT_TRUE(unhide_registration(dirs, r));
    EXPECT_FALSE(fs::exists(dirs.write / "driver.module"));
    EXPECT_TRUE(only("driver").enabled);
    EXPECT_FALSE(only("driver").hidden_by_ukey);
}

TEST_F(P11KitFolders, AnAdministratorsOverrideKeepsItsText)
{
    package("driver", "module: driver.so\n");
    fs::create_directories(dirs.write);
    const std::string admin = "# ours, do not touch\npriority: 5";
    ukeytest::write_file(dirs.write / "driver.module", admin, 0644);
    ASSERT_TRUE(hide_registration(dirs, only("driver"), "bank"));
    EXPECT_FALSE(only("driver").enabled);
    EXPECT_EQ("bank", only("driver").hidden_for);
    EXPECT_EQ(0u, ukeytest::read_file(dirs.write / "driver.module").rfind(admin + "\n", 0));
    ASSERT_TRUE(unhide_registration(dirs, only("driver")));
    EXPECT_EQ(admin + "\n", ukeytest::read_file(dirs.write / "driver.module"));
    EXPECT_TRUE(only("driver").enabled);
}

} // namespace
