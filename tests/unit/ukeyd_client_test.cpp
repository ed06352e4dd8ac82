// The client of ukeyd's socket (token/ukeyd_client.*), against a socket
// this test listens on and answers by hand.
#include "token/ukeyd_client.h"
#include "token/ukeyd_events.h"

#include "ukeytest/files.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

using ukey::UkeydClient;
using ukey::UkeydFailure;

namespace {

class UkeydClientTest : public ::testing::Test {
protected:
    void SetUp() override
    {
        path = (dir / "ukeyd.sock").string();
        listener = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
        ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
        ASSERT_EQ(::listen(listener, 4), 0);
    }
    void TearDown() override
    {
        if (peer >= 0)
            ::close(peer);
        ::close(listener);
    }
    // Connects the client and takes the daemon's end.
    void connect(UkeydClient& c)
    {
        ASSERT_FALSE(c.connect(path, soon(1000)));
        peer = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
        ASSERT_GE(peer, 0);
    }
    void say(const std::string& text) { ASSERT_EQ(::write(peer, text.data(), text.size()), ssize_t(text.size())); }
    std::string heard()
    {
        char buf[4096];
        const ssize_t n = ::read(peer, buf, sizeof buf);
        return n > 0 ? std::string(buf, std::size_t(n)) : std::string();
    }
    static UkeydClient::Clock::time_point soon(int ms)
    {
        return UkeydClient::Clock::now() + std::chrono::milliseconds(ms);
    }

    ukeytest::TempDir tmp{"/tmp", "ukeyd-client-"};
    const std::filesystem::path dir = tmp.path();
    std::string path;
    int listener = -1, peer = -1;
};

} // namespace

TEST_F(UkeydClientTest, NoDaemonBadPathAndARequestAnswered)
{
    UkeydClient c(1024);
    auto e = c.connect((dir / "nothing.sock").string(), soon(100));
    ASSERT_TRUE(e);
    EXPECT_EQ(e->kind, UkeydFailure::absent);
    EXPECT_FALSE(e->misbehaved());
    EXPECT_FALSE(c.connected());
    e = c.connect(std::string("/").append(200, 'x'), soon(100));
    ASSERT_TRUE(e);
    EXPECT_EQ(e->kind, UkeydFailure::bad_path);

    connect(c);
    ASSERT_TRUE(c.connected());
    EXPECT_FALSE(c.send(UkeydClient::subscribe_request({"key-inserted"}), soon(1000)));
    EXPECT_EQ(heard(), "{\"request\":\"subscribe\",\"events\":[\"key-inserted\"]}\n");
    say("{\"ok\":true}\n{\"event\":\"key-removed\"}\n{\"event\":");
    UkeydFailure f{UkeydFailure::failed, {}};
    auto r = c.reply(soon(1000), f);
    ASSERT_TRUE(r) << f.why;
    EXPECT_EQ((*r)["ok"], true);
    // What came with the reply waits; a partial line is not a line.
    EXPECT_EQ(c.next_line(), "{\"event\":\"key-removed\"}");
    EXPECT_FALSE(c.next_line());
    EXPECT_EQ(UkeydClient::subscribe_request({}), "{\"request\":\"subscribe\"}");
}

TEST_F(UkeydClientTest, RefusalsGarbageSilenceAndHangUpsAreTold)
{
    UkeydClient c(1024);
    connect(c);
    UkeydFailure f{UkeydFailure::failed, {}};
    say("{\"ok\":false,\"error\":\"bad-request\",\"message\":\"no such request\"}\n");
    EXPECT_FALSE(c.request("{\"request\":\"nope\"}", soon(1000), f));
    EXPECT_EQ(f.kind, UkeydFailure::refused);
    EXPECT_EQ(f.why, "bad-request: no such request");
    EXPECT_TRUE(f.misbehaved());

    say("[1,2]\n");
    EXPECT_FALSE(c.reply(soon(1000), f));
    EXPECT_EQ(f.kind, UkeydFailure::not_json);

    EXPECT_FALSE(c.reply(soon(50), f));
    EXPECT_EQ(f.kind, UkeydFailure::timeout);

    say("{\"ok\":true}\n");
    ::close(peer);
    peer = -1;
    EXPECT_TRUE(c.reply(soon(1000), f)); // a line before the end is still read
    EXPECT_FALSE(c.reply(soon(1000), f));
    EXPECT_EQ(f.kind, UkeydFailure::gone);
}

TEST_F(UkeydClientTest, ALineOverTheLimitEndsTheReading)
{
    UkeydClient c(64);
    connect(c);
    say(std::string(32, 'a') + "\n" + std::string(100, 'b'));
    auto e = c.receive();
    ASSERT_TRUE(e);
    EXPECT_EQ(e->kind, UkeydFailure::too_long);
    EXPECT_EQ(c.next_line(), std::string(32, 'a')); // the whole line before it stays readable
    EXPECT_TRUE(c.overlong());
    c.close();
    EXPECT_FALSE(c.connected());
    EXPECT_FALSE(c.next_line());
}

TEST(UkeydEvents, OneNameEach)
{
    EXPECT_EQ(ukey::event_name(ukey::UkeydEvent::key_inserted), "key-inserted");
    EXPECT_EQ(ukey::event_name(ukey::UkeydEvent::renewal), "renewal");
    for (std::size_t i = 0; i < ukey::ukeyd_event_names.size(); ++i)
        EXPECT_EQ(ukey::event_named(ukey::ukeyd_event_names[i]), static_cast<ukey::UkeydEvent>(i));
    EXPECT_FALSE(ukey::event_named("key-inserterd"));
}
