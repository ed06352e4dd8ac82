// The socket server's rules, driven through a real Unix socket and a real
// epoll loop (the daemon's end to end tests are in tests/daemon/).
#include "server.h"

#include "token/log.h"

#include "ukeytest/files.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <string>

#include <fcntl.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <csignal>
#include <cstring>
#include <unistd.h>

using nlohmann::json;
using ukey::daemon::Server;

namespace {

class ServerTest : public ::testing::Test {
protected:
    void SetUp() override
    {
        path = dir / "run" / "ukeyd.sock";
        ep = epoll_create1(EPOLL_CLOEXEC);
        server = std::make_unique<Server>(ep, [](const json& r, uid_t, gid_t) {
            if (r.value("request", "") == "list")
                return json{{"ok", true}, {"keys", json::array()}};
            return ukey::daemon::error_reply("unknown request");
        });
        auto listening = server->listen(path);
        ASSERT_TRUE(listening) << listening.error().message;
    }
    void TearDown() override
    {
        server.reset();
        close(ep);
    }
    // One round of the daemon's loop.
    void pump(int ms = 20)
    {
        epoll_event evs[64];
        int n = epoll_wait(ep, evs, 64, ms);
        for (int i = 0; i < n; ++i) {
            if (evs[i].data.fd == server->listen_fd())
                server->on_accept();
            else
                server->on_client(evs[i].data.fd, evs[i].events);
        }
    }
    int client()
    {
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_un a{};
        a.sun_family = AF_UNIX;
        std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
        EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
        pump();
        return fd;
    }
    // Reads one line, pumping the server meanwhile; "" on EOF or timeout.
    std::string line(int fd, int limit_ms = 2000)
    {
        std::string s;
        for (int waited = 0; waited < limit_ms; waited += 10) {
            pump(5);
            pollfd p{fd, POLLIN, 0};
            if (poll(&p, 1, 5) == 1) {
                char c;
                while (recv(fd, &c, 1, MSG_DONTWAIT) == 1) {
                    if (c == '\n')
                        return s;
                    s += c;
                }
                if (p.revents & POLLHUP)
                    return s;
            }
        }
        return s;
    }
    bool closed(int fd)
    {
        for (int i = 0; i < 100; ++i) {
            pump(5);
            char c;
            ssize_t n = recv(fd, &c, 1, MSG_DONTWAIT);
            if (n == 0)
                return true;
        }
        return false;
    }
    ukeytest::TempDir tmp{"/tmp", "ukeyd-server-"};
    const std::filesystem::path dir = tmp.path();
    std::filesystem::path path;
    int ep = -1;
    std::unique_ptr<Server> server;
};

} // namespace

TEST_F(ServerTest, SocketIsOpenToLocalUsersAndItsFileIsRemovedAtClose)
{
    struct stat st{};
    ASSERT_EQ(stat(path.c_str(), &st), 0);
    EXPECT_TRUE(S_ISSOCK(st.st_mode));
    EXPECT_EQ(st.st_mode & 0777, 0666u);
    server->close_listener();
    EXPECT_NE(access(path.c_str(), F_OK), 0);
}

TEST_F(ServerTest, ASecondDaemonDoesNotStealTheSocket)
{
    int ep2 = epoll_create1(EPOLL_CLOEXEC);
    Server other(ep2, [](const json&, uid_t, gid_t) { return json(); });
    auto second = other.listen(path);
    ASSERT_FALSE(second);
    EXPECT_NE(second.error().message.find("another ukeyd"), std::string::npos);
    close(ep2);
}

TEST_F(ServerTest, GarbageGetsAnErrorAndTheConnectionStays)
{
    int fd = client();
    const std::string bad = "hello\n[1,2]\n{\"request\":\"nope\"}\n{\"request\":\"list\"}\n";
    ASSERT_EQ(send(fd, bad.data(), bad.size(), 0), ssize_t(bad.size()));
    for (int i = 0; i < 3; ++i) {
        json r = json::parse(line(fd));
        EXPECT_EQ(r["ok"], false);
        EXPECT_EQ(r["error"], "bad-request");
    }
    EXPECT_EQ(json::parse(line(fd))["ok"], true);
    close(fd);
}

TEST_F(ServerTest, AnOversizedLineIsRefusedAndClosed)
{
    int fd = client();
    fcntl(fd, F_SETFL, O_NONBLOCK);
    std::string big(Server::max_line + 10, 'x');
    std::size_t sent = 0;
    for (int i = 0; i < 1000 && sent < big.size(); ++i) {
        ssize_t n = send(fd, big.data() + sent, big.size() - sent, MSG_NOSIGNAL);
        if (n > 0)
            sent += size_t(n);
        pump(2);
    }
    EXPECT_NE(line(fd).find("longer than"), std::string::npos);
    EXPECT_TRUE(closed(fd));
    EXPECT_EQ(server->clients(), 0u);
    close(fd);
}

TEST_F(ServerTest, SubscribersGetTheEventsTheyAskedFor)
{
    int all = client(), some = client();
    send(all, "{\"request\":\"subscribe\"}\n", 24, 0);
    const std::string sub = "{\"request\":\"subscribe\",\"events\":[\"key-removed\"]}\n";
    send(some, sub.data(), sub.size(), 0);
    EXPECT_EQ(json::parse(line(all))["subscribed"], true);
    EXPECT_EQ(json::parse(line(some))["subscribed"], true);
    EXPECT_EQ(server->subscribers(), 2u);
    server->publish(json{{"event", "key-inserted"}});
    server->publish(json{{"event", "key-removed"}});
    EXPECT_EQ(json::parse(line(all))["event"], "key-inserted");
    EXPECT_EQ(json::parse(line(all))["event"], "key-removed");
    EXPECT_EQ(json::parse(line(some))["event"], "key-removed");
    close(all);
    close(some);
    for (int i = 0; i < 10; ++i)
        pump(5);
    EXPECT_EQ(server->clients(), 0u);
}

TEST_F(ServerTest, ASubscriberThatNeverReadsIsDroppedOthersAreServed)
{
    int slow = client(), good = client();
    send(slow, "{\"request\":\"subscribe\"}\n", 24, 0);
    pump();
    pump();
    json big{{"event", "key-inserted"}, {"pad", std::string(4000, 'p')}};
    for (int i = 0; i < 600 && server->clients() == 2; ++i) {
        server->publish(big);
        pump(0);
    }
    EXPECT_EQ(server->clients(), 1u); // the slow one went, at about 1 MiB queued
    send(good, "{\"request\":\"list\"}\n", 19, 0);
    EXPECT_EQ(json::parse(line(good))["ok"], true);
    close(slow);
    close(good);
}

TEST_F(ServerTest, AccessListsRefuseOthers)
{
    // Root and the daemon's own user always pass; a list naming only another
    // user must still let us (the daemon's user) in.
    server->set_access({"nobody"}, {});
    int fd = client();
    send(fd, "{\"request\":\"list\"}\n", 19, 0);
    EXPECT_EQ(json::parse(line(fd))["ok"], true);
    close(fd);
}

TEST_F(ServerTest, OneUserCannotTakeEveryConnection)
{
    // As another user (nobody): 64 connections are served, the next refused;
    // root still gets in.
    if (geteuid() != 0)
        GTEST_SKIP() << "needs root to connect as another user";
    chmod(dir.c_str(), 0755);
    chmod((dir / "run").c_str(), 0755);
    pid_t pid = fork();
    if (pid == 0) {
        if (setgid(65534) != 0 || setuid(65534) != 0)
            _exit(2);
        std::vector<int> mine;
        for (int i = 0; i < 70; ++i) {
            int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
            sockaddr_un a{};
            a.sun_family = AF_UNIX;
            std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
            if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0)
                _exit(3);
            mine.push_back(fd);
        }
        pause();
        _exit(0);
    }
    ASSERT_GT(pid, 0);
    for (int i = 0; i < 100 && server->clients() < Server::max_clients_per_user; ++i)
        pump(10);
    for (int i = 0; i < 20; ++i)
        pump(5);
    EXPECT_EQ(server->clients(), Server::max_clients_per_user);
    int fd = client();
    send(fd, "{\"request\":\"list\"}\n", 19, 0);
    EXPECT_EQ(json::parse(line(fd))["ok"], true);
    close(fd);
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
}

TEST(ConnectionBudget, ABurstThenTheRateRootAndTheDaemonExempt)
{
    ukey::daemon::ConnectionBudget b(10, 5); // 10 a second after 5 at once
    const uid_t user = 12345;
    for (int i = 0; i < 5; ++i)
        EXPECT_TRUE(b.take(user, 1000)) << i;
    EXPECT_FALSE(b.take(user, 1000));
    EXPECT_TRUE(b.take(user + 1, 1000)); // each user has a budget of his own
    EXPECT_FALSE(b.take(user, 1050));    // half a token
    EXPECT_TRUE(b.take(user, 1100));     // 0.1 s at 10 a second: one more
    EXPECT_FALSE(b.take(user, 1100));
    EXPECT_TRUE(b.take(user, 1000 + 10'000)); // a quiet while refills it, up to the burst
    for (int i = 0; i < 1000; ++i) {
        EXPECT_TRUE(b.take(0, 1000));
        EXPECT_TRUE(b.take(geteuid(), 1000));
    }
}

TEST(RefusalLog, TheFirstFewThenOneSummaryPerUserAndInterval)
{
    using ukey::daemon::RefusalLog;
    ukey::log::configure({ukey::log::Level::warning, true, false});
    RefusalLog r;
    const int64_t t0 = 1'000'000;
    const uid_t user = 12345;
    testing::internal::CaptureStderr();
    for (int i = 0; i < 10'000; ++i)
        r.note(user, "refused uid 12345 #" + std::to_string(i), "too often", t0 + i / 100);
    for (int i = 0; i < 50; ++i)
        r.note(user + 1, "refused uid 12346", "not allowed", t0 + 200);
    r.flush(t0 + RefusalLog::interval_ms - 1); // not yet
    EXPECT_EQ(r.deadline(), t0 + RefusalLog::interval_ms);
    std::string during = testing::internal::GetCapturedStderr();
    EXPECT_EQ(std::count(during.begin(), during.end(), '\n'), RefusalLog::logged_per_interval) << during;
    EXPECT_NE(during.find("#4 (more such lines are summarised"), std::string::npos) << during;
    testing::internal::CaptureStderr();
    r.flush(t0 + RefusalLog::interval_ms);
    std::string summary = testing::internal::GetCapturedStderr();
    EXPECT_EQ(std::count(summary.begin(), summary.end(), '\n'), 2) << summary;
    EXPECT_NE(summary.find("9995 more from uid 12345 in the last 60 s: too often"), std::string::npos) << summary;
    EXPECT_NE(summary.find("50 more from uid 12346 in the last 60 s: not allowed"), std::string::npos) << summary;
    EXPECT_EQ(r.deadline(), 0);
    // Root's are never held back.
    testing::internal::CaptureStderr();
    for (int i = 0; i < 20; ++i)
        r.note(0, "root's line", "root", t0 + RefusalLog::interval_ms + 1);
    std::string root = testing::internal::GetCapturedStderr();
    EXPECT_EQ(std::count(root.begin(), root.end(), '\n'), 20);
}
