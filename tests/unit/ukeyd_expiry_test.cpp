#include "expiry.h"

#include "ukeytest/files.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include <sys/stat.h>
#include <unistd.h>

using ukey::daemon::days_left;
using ukey::daemon::ExpiryWatch;

namespace {

constexpr std::time_t day = 86400;
const std::time_t now = 1'800'000'000;

ukeytest::TempDir temp_dir()
{
    return ukeytest::TempDir("/tmp", "ukeyd-expiry-");
}

} // namespace

TEST(Expiry, DaysLeftRoundsUpWhileValid)
{
    EXPECT_EQ(days_left(now + 6 * day, now), 6);
    EXPECT_EQ(days_left(now + 6 * day - 60, now), 6); // issued "for 6 days" a minute ago
    EXPECT_EQ(days_left(now + 1, now), 1);
    EXPECT_EQ(days_left(now, now), 0);
    EXPECT_EQ(days_left(now - 1, now), 0);
    EXPECT_EQ(days_left(now - day - 5, now), -1);
}

TEST(Expiry, OneNoticePerCrossingAtTheSmallestThreshold)
{
    const ukeytest::TempDir d = temp_dir();
    ExpiryWatch w;
    w.open(d.path());
    EXPECT_FALSE(w.check("a", now + 40 * day, now));
    auto n = w.check("b", now + 6 * day, now);
    ASSERT_TRUE(n);
    EXPECT_FALSE(n->expired);
    EXPECT_EQ(n->threshold, 7u); // not 28 and 7: one notice
    EXPECT_EQ(n->days_left, 6);
    EXPECT_FALSE(w.check("b", now + 6 * day, now + 3600)); // once
    EXPECT_FALSE(w.check("b", now + 6 * day, now + 2 * day)); // 4 days left: still above 3
    n = w.check("b", now + 6 * day, now + 3 * day);          // 3 days left: crosses 3
    ASSERT_TRUE(n);
    EXPECT_EQ(n->threshold, 3u);
    n = w.check("b", now + 6 * day, now + 6 * day + 10);
    ASSERT_TRUE(n);
    EXPECT_TRUE(n->expired);
    EXPECT_FALSE(w.check("b", now + 6 * day, now + 8 * day)); // expired only once
    auto x = w.check("c", now - day, now);
    ASSERT_TRUE(x);
    EXPECT_TRUE(x->expired);
    EXPECT_EQ(x->days_left, -1);
}

TEST(Expiry, StateSurvivesARestartAndIsPrivate)
{
    const ukeytest::TempDir d = temp_dir();
    {
        ExpiryWatch w;
        w.open(d.path());
        ASSERT_TRUE(w.check("b", now + 6 * day, now));
        ASSERT_TRUE(w.check("c", now - day, now));
        w.save();
    }
    struct stat st{};
    ASSERT_EQ(stat((d.path() / "ukeyd" / "expiry.json").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    ASSERT_EQ(stat((d.path() / "ukeyd").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0700u);
    ExpiryWatch w;
    w.open(d.path());
    EXPECT_FALSE(w.check("b", now + 6 * day, now + 60));
    EXPECT_FALSE(w.check("c", now - day, now + 60));
    EXPECT_TRUE(w.check("d", now + 2 * day, now)); // a new certificate still fires
}

TEST(Expiry, DamagedStateStartsAfresh)
{
    const ukeytest::TempDir d = temp_dir();
    std::filesystem::create_directories(d.path() / "ukeyd");
    std::ofstream(d.path() / "ukeyd" / "expiry.json") << "{not json";
    ExpiryWatch w;
    w.open(d.path());
    EXPECT_TRUE(w.check("b", now + 6 * day, now));
    w.save();
    ExpiryWatch again;
    again.open(d.path());
    EXPECT_FALSE(again.check("b", now + 6 * day, now));
}

TEST(Expiry, ConfiguredThresholds)
{
    const ukeytest::TempDir d = temp_dir();
    ExpiryWatch w;
    w.open(d.path());
    w.set_thresholds({30, 10});
    auto n = w.check("a", now + 25 * day, now);
    ASSERT_TRUE(n);
    EXPECT_EQ(n->threshold, 30u);
    EXPECT_FALSE(w.check("b", now + 31 * day, now));
}
