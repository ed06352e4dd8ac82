// When ukeyd starts automatic renewals, and how it words their end.
#include "renewal_schedule.h"

#include <gtest/gtest.h>

#include <string>

#include <sys/wait.h>

using ukey::daemon::RenewalSchedule;
using ukey::daemon::renewal_outcome;

TEST(RenewalSchedule, OneAtATimePerKeyAndOneAttemptPerInterval)
{
    RenewalSchedule s;
    const int64_t day = 86'400'000;
    EXPECT_TRUE(s.due("a", 1000, day));
    s.started("a");
    EXPECT_TRUE(s.running("a"));
    EXPECT_FALSE(s.due("a", 1000, day));
    EXPECT_TRUE(s.due("b", 1000, day)); // other Keys are not held up
    EXPECT_EQ(s.running_keys().size(), 1u);

    s.finished("a", 5000);
    EXPECT_FALSE(s.running("a"));
    EXPECT_FALSE(s.due("a", 5000 + day - 1, day));
    EXPECT_TRUE(s.due("a", 5000 + day, day));
}

TEST(RenewalOutcome, ExitCodesInWords)
{
    auto exited = [](int code) { return code << 8; }; // as waitpid reports exit(code)
    ASSERT_TRUE(WIFEXITED(exited(14)) && WEXITSTATUS(exited(14)) == 14);
    EXPECT_STREQ(renewal_outcome(exited(0)).state, "finished");
    EXPECT_STREQ(renewal_outcome(exited(14)).state, "incomplete");
    EXPECT_NE(renewal_outcome(exited(14)).message.find("resumed"), std::string::npos);
    EXPECT_STREQ(renewal_outcome(exited(13)).state, "failed");
    EXPECT_NE(renewal_outcome(exited(13)).message.find("the CA did not issue"), std::string::npos);
    EXPECT_STREQ(renewal_outcome(exited(1)).state, "failed");
    EXPECT_EQ(renewal_outcome(exited(1)).message.find("the CA"), std::string::npos);
    EXPECT_STREQ(renewal_outcome(-1).state, "failed"); // killed for its timeout
    EXPECT_STREQ(renewal_outcome(SIGKILL).state, "failed");
}
