// C_WaitForSlotEvent and the ukeyd protocol (wait_event.h), exercised only
// for what the real daemon cannot be made to do: a tiny line server in the
// test plays a peer that closes mid-line, sends garbage, refuses, stays
// silent or floods.
#include "wait_event.h"

using namespace waitevent;

namespace {

const char kSubscribe[] = "{\"request\":\"subscribe\",\"events\":[\"key-inserted\",\"key-removed\"]}";

std::string event_line(const char* name, CK_SLOT_ID slot)
{
    return std::string("{\"event\":\"") + name +
           "\",\"time\":\"2026-11-21T12:00:00.123Z\",\"time_ms\":1795262400123,\"key\":{\"id\":\"softhsm/x/y/z\","
           "\"source\":\"backend\",\"slot_id\":" +
           std::to_string(slot) + ",\"backend\":\"softhsm\"}}\n";
}

// A protocol peer: a Unix socket server that runs `script` on each
// connection (on its own thread; the connection closes when it returns).
class LineServer {
public:
    using Script = std::function<void(LineServer&, int fd)>;

    LineServer(std::filesystem::path path, Script script) : path_(std::move(path)), script_(std::move(script))
    {
        listen_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_un a{};
        a.sun_family = AF_UNIX;
        std::strncpy(a.sun_path, path_.c_str(), sizeof a.sun_path - 1);
        std::filesystem::remove(path_);
        if (listen_ < 0 || ::bind(listen_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(listen_, 8) != 0)
            throw std::runtime_error("LineServer: cannot listen on " + path_.string());
        acceptor_ = std::thread([this] { accept_loop(); });
    }
    ~LineServer()
    {
        stop_ = true;
        acceptor_.join();
        for (auto& t : sessions_)
            t.join();
        ::close(listen_);
        std::filesystem::remove(path_);
    }

    int connections() const { return connections_; }
    bool stopping() const { return stop_; }
    std::vector<std::string> requests() const
    {
        std::lock_guard<std::mutex> g(m_);
        return requests_;
    }

    // Reads one request line (up to 10 s, or until the server stops: the
    // module writes it right after connecting, so the bound only ends a
    // session whose line never comes); records it.
    std::string read_line(int fd)
    {
        std::string line;
        const auto until = Clock::now() + 10s;
        char c;
        while (Clock::now() < until && !stop_) {
            pollfd p{fd, POLLIN, 0};
            if (::poll(&p, 1, 100) <= 0)
                continue;
            if (::read(fd, &c, 1) != 1)
                break;
            if (c == '\n') {
                std::lock_guard<std::mutex> g(m_);
                requests_.push_back(line);
                return line;
            }
            line += c;
        }
        return line;
    }
    // Reads the subscription request and accepts it, as ukeyd does.
    void subscribed(int fd)
    {
        read_line(fd);
        send(fd, "{\"ok\":true,\"subscribed\":true}\n");
    }
    static void send(int fd, const std::string& s)
    {
        std::size_t done = 0;
        while (done < s.size()) {
            ssize_t n = ::send(fd, s.data() + done, s.size() - done, MSG_NOSIGNAL);
            if (n <= 0)
                return;
            done += static_cast<std::size_t>(n);
        }
    }
    // Sleeps until the server stops (the connection stays open meanwhile).
    void hold() const
    {
        while (!stop_)
            std::this_thread::sleep_for(20ms);
    }

private:
    void accept_loop()
    {
        while (!stop_) {
            pollfd p{listen_, POLLIN, 0};
            if (::poll(&p, 1, 50) <= 0)
                continue;
            int fd = ::accept4(listen_, nullptr, nullptr, SOCK_CLOEXEC);
            if (fd < 0)
                continue;
            ++connections_;
            sessions_.emplace_back([this, fd] {
                script_(*this, fd);
                ::close(fd);
            });
        }
    }

    std::filesystem::path path_;
    Script script_;
    int listen_ = -1;
    std::atomic<bool> stop_{false};
    std::atomic<int> connections_{0};
    std::thread acceptor_;
    std::vector<std::thread> sessions_;
    mutable std::mutex m_;
    std::vector<std::string> requests_;
};

// A daemon that, once subscribed, waits `after`, sends `lines` and holds.
LineServer::Script sends(std::chrono::milliseconds after, std::string lines)
{
    return [after, lines](LineServer& s, int fd) {
        s.subscribed(fd);
        std::this_thread::sleep_for(after);
        LineServer::send(fd, lines);
        s.hold();
    };
}

// ---- protocol peers the real daemon cannot be made to be ---------------------

// Lines a subscriber must survive: not JSON, not an event, an event
// without a usable slot_id, an event it does not take, a line cut short.
const std::vector<std::string> kGarbageLines = {
    "not json at all\n",
    "[1,2,3]\n",
    "\n",
    std::string("\x00\xff\xfe{\"event\"", 10) + "\n",
    "{\"ok\":false,\"error\":\"bad-request\",\"message\":\"x\"}\n",
    "{\"event\":\"key-inserted\"}\n",
    "{\"event\":\"key-inserted\",\"key\":\"softhsm\"}\n",
    "{\"event\":\"key-inserted\",\"key\":{\"slot_id\":-5}}\n",
    "{\"event\":\"key-inserted\",\"key\":{\"slot_id\":\"12\"}}\n",
    "{\"event\":\"key-inserted\",\"key\":{\"slot_id\":1.5}}\n",
    "{\"event\":\"key-inserted\",\"key\":{\"slot_id\":0}}\n",
    "{\"event\":\"key-inserted\",\"key\":{\"slot_id\":1e400}}\n",
    "{\"event\":\"key-inserted\",\"key\":{\"slot_id\":99999999999999999999999}}\n",
    "{\"event\":\"key-inserted\",\"key\":{\"source\":\"pcsc\",\"id\":\"pcsc:r\"}}\n",
    "{\"event\":\"reader-added\",\"reader\":\"r\",\"key\":{\"slot_id\":5}}\n",
    "{\"event\":\"pin-locked\",\"which\":\"user\",\"key\":{\"slot_id\":6}}\n",
    "{\"event\":\"key-inserted\",\"key\":{\"slot_id\":4242},\"unterminated\":\n",
};

// Subscribes with exactly the documented request; survives garbage lines and
// still acts on the good line after them: another process made a token, and
// the Key reported is one this process can use (its SoftHSM2 initialised
// again), whatever slot ID the daemon's line named.
TEST_F(WaitEvent, DaemonGarbageLinesAreSurvived)
{
    LineServer server(socket_, [](LineServer& s, int fd) {
        s.subscribed(fd);
        std::this_thread::sleep_for(200ms);
        for (const std::string& line : kGarbageLines)
            LineServer::send(fd, line);
        LineServer::send(fd, event_line("key-inserted", 4242));
        s.hold();
    });
    init();
    other_process_token("other");
    ASSERT_EQ(slot_labelled("other"), 0u) << "this process's SoftHSM2 shows the other process's token already";
    Waiter w(*module_);
    auto rv = w.result(10s);
    ASSERT_TRUE(rv) << "the good line after the garbage was not acted on";
    EXPECT_RV(CKR_OK, *rv);
    EXPECT_EQ(w.slot(), slot_labelled("other"));
    EXPECT_NE(w.slot(), 0u);
    ASSERT_FALSE(server.requests().empty());
    EXPECT_EQ(server.requests().front(), kSubscribe);
    EXPECT_EQ(server.connections(), 1) << "garbage lines must not cost the connection";
    const auto rest = drain(); // SoftHSM2's empty slots, old and new
    expect_known(rest);
    for (CK_SLOT_ID bogus : {4242u, 5u, 6u, 12u})
        EXPECT_EQ(std::count(rest.begin(), rest.end(), CK_SLOT_ID(bogus)), 0) << "a garbage line became an event";
}

// The daemon's word for a slot nobody has: nothing is reported (an event
// always names a slot the application can use).
TEST_F(WaitEvent, DaemonWordForAnUnknownSlotIsNoEvent)
{
    LineServer server(socket_, sends(100ms, event_line("key-inserted", 4242) + event_line("key-removed", 4243)));
    init();
    Waiter w(*module_);
    EXPECT_TRUE(eventually(10s, [&] { return server.connections() >= 1; }));
    EXPECT_FALSE(w.result(1500ms)) << "reported slot " << w.slot();
    finalize_wakes(w);
}

// With a session open on the backend, it is not initialised again (the
// session would be lost): the other process's Key waits, the session works.
TEST_F(WaitEvent, DaemonWordWithASessionOpenKeepsTheSession)
{
    LineServer server(socket_, sends(100ms, event_line("key-inserted", 4242)));
    init();
    const CK_SESSION_HANDLE session = open_session(fl(), slot_by_label(fl(), modtest::kDefaultToken.label), false);
    other_process_token("other");
    Waiter w(*module_);
    EXPECT_FALSE(w.result(1500ms)) << "reported slot " << w.slot();
    CK_SESSION_INFO info{};
    EXPECT_RV(CKR_OK, fl()->C_GetSessionInfo(session, &info));
    EXPECT_EQ(slot_labelled("other"), 0u);
    finalize_wakes(w);
}

// The daemon's word that a Key is out is taken as a pulled card, also where
// the backend still shows the Key as it was and cannot be initialised again
// (a session on its other Key): the event names it, it answers as out, its
// session is gone (CKR_SESSION_HANDLE_INVALID), the other Key's stays. Its
// word that the Key is in again brings it back.
TEST_F(WaitEvent, DaemonWordThatAKeyIsOutEndsItsSessions)
{
    std::atomic<CK_SLOT_ID> key{0};
    std::atomic<bool> back{false};
    LineServer server(socket_, [&](LineServer& s, int fd) {
        s.subscribed(fd);
        while (!key && !s.stopping())
            std::this_thread::sleep_for(10ms);
        LineServer::send(fd, event_line("key-removed", key));
        while (!back && !s.stopping())
            std::this_thread::sleep_for(10ms);
        LineServer::send(fd, event_line("key-inserted", key));
        s.hold();
    });
    init();
    const CK_SLOT_ID slot = slot_by_label(fl(), modtest::kDefaultToken.label);
    const CK_SESSION_HANDLE session = open_session(fl(), slot, false);
    const CK_SESSION_HANDLE other = open_session(fl(), init_token("other"), false);
    drain(); // C_InitToken's events
    Waiter w(*module_);
    key = slot;
    auto rv = w.result(10s);
    ASSERT_TRUE(rv) << "no event for the Key the daemon says is out";
    EXPECT_RV(CKR_OK, *rv);
    EXPECT_EQ(w.slot(), slot);
    CK_TOKEN_INFO ti{};
    EXPECT_RV(CKR_TOKEN_NOT_PRESENT, fl()->C_GetTokenInfo(slot, &ti));
    CK_SLOT_INFO si{};
    EXPECT_RV(CKR_OK, fl()->C_GetSlotInfo(slot, &si));
    EXPECT_FALSE(si.flags & CKF_TOKEN_PRESENT);
    const auto present = slot_list(fl(), true);
    EXPECT_EQ(std::count(present.begin(), present.end(), slot), 0);
    CK_SESSION_INFO info{};
    EXPECT_RV(CKR_SESSION_HANDLE_INVALID, fl()->C_GetSessionInfo(session, &info));
    EXPECT_RV(CKR_SESSION_HANDLE_INVALID, fl()->C_CloseSession(session));
    CK_SESSION_HANDLE again = CK_INVALID_HANDLE;
    EXPECT_RV(CKR_TOKEN_NOT_PRESENT, fl()->C_OpenSession(slot, CKF_SERIAL_SESSION, nullptr, nullptr, &again));

    back = true;
    Waiter w2(*module_);
    rv = w2.result(10s);
    ASSERT_TRUE(rv) << "no event for the Key the daemon says is in again";
    EXPECT_RV(CKR_OK, *rv);
    EXPECT_EQ(w2.slot(), slot);
    EXPECT_RV(CKR_OK, fl()->C_GetTokenInfo(slot, &ti));
    EXPECT_RV(CKR_OK, fl()->C_OpenSession(slot, CKF_SERIAL_SESSION, nullptr, nullptr, &again));
    EXPECT_RV(CKR_OK, fl()->C_CloseSession(again));
    EXPECT_RV(CKR_OK, fl()->C_GetSessionInfo(other, &info)) << "the other Key's session";
}

// An event line split across writes is put together; a key-removed for a
// slot this process never had is no event.
TEST_F(WaitEvent, DaemonLineInPieces)
{
    LineServer server(socket_, [](LineServer& s, int fd) {
        s.subscribed(fd);
        std::string line = event_line("key-removed", 31337) + event_line("key-inserted", 31338);
        for (char c : line) {
            LineServer::send(fd, std::string(1, c));
            if (c == ':' || c == '\n')
                std::this_thread::sleep_for(10ms);
        }
        s.hold();
    });
    init();
    other_process_token("other");
    Waiter w1(*module_);
    auto rv = w1.result(10s);
    ASSERT_TRUE(rv);
    EXPECT_RV(CKR_OK, *rv);
    EXPECT_EQ(w1.slot(), slot_labelled("other"));
    const auto rest = drain();
    expect_known(rest);
    EXPECT_EQ(std::count(rest.begin(), rest.end(), CK_SLOT_ID(31337)), 0);
}

// Once subscribed, CKF_DONT_BLOCK also acts on what the daemon sent, once:
// the other process's Key, which no own rescan could have found.
TEST_F(WaitEvent, DaemonEventsReachDontBlock)
{
    std::atomic<bool> go{false};
    LineServer server(socket_, [&go](LineServer& s, int fd) {
        s.subscribed(fd);
        while (!go && !s.stopping())
            std::this_thread::sleep_for(10ms);
        LineServer::send(fd, event_line("key-inserted", 556));
        s.hold();
    });
    init();
    EXPECT_TRUE(drain().empty()); // subscribes
    EXPECT_TRUE(eventually(10s, [&] { return server.connections() >= 1; }));
    other_process_token("other");
    EXPECT_TRUE(drain().empty()) << "the own rescan cannot see another process's SoftHSM2 token";
    go = true;
    std::vector<CK_SLOT_ID> got;
    EXPECT_TRUE(eventually(10s, [&] {
        for (CK_SLOT_ID s : drain())
            got.push_back(s);
        return std::count(got.begin(), got.end(), slot_labelled("other")) > 0;
    })) << "CKF_DONT_BLOCK never reported the other process's Key";
    expect_known(got);
    EXPECT_EQ(std::count(got.begin(), got.end(), slot_labelled("other")), 1);
    EXPECT_TRUE(drain().empty());
}

// The daemon closes mid-line: no event from the half line, the own means
// take over, and the module connects again a few seconds later.
TEST_F(WaitEvent, DaemonClosesMidLine)
{
    LineServer server(socket_, [](LineServer& s, int fd) {
        s.subscribed(fd);
        if (s.connections() == 1) {
            std::this_thread::sleep_for(200ms);
            LineServer::send(fd, "{\"event\":\"key-inserted\",\"key\":{\"slot_id\":77");
            return; // closes
        }
        s.hold();
    });
    init();
    // Until the peer closes (200 ms after subscribing), the slower rescan
    // of a connected daemon applies.
    expect_init_token_seen(kOwnRescanWithDaemon + kSlack);
    EXPECT_GE(server.connections(), 1);
    // The slot of the half line never comes.
    for (CK_SLOT_ID s : drain())
        EXPECT_NE(s, 77u);
    // Reconnects while a caller is blocked.
    Waiter w(*module_);
    EXPECT_TRUE(eventually(kReconnect + kSlack, [&] { return server.connections() >= 2; })) << "never reconnected";
    EXPECT_FALSE(w.result(0ms));
    finalize_wakes(w);
}

// Handshake failures: silence, a refusal, a hang-up, garbage, a line too
// long. Each time the own means keep working and the module tries again
// later, not in a loop.
struct Handshake {
    const char* name;
    LineServer::Script script;
};

void PrintTo(const Handshake& h, std::ostream* os)
{
    *os << h.name;
}

class DaemonHandshake : public WaitEvent, public testing::WithParamInterface<Handshake> {};

TEST_P(DaemonHandshake, OwnMeansStillWork)
{
    LineServer server(socket_, GetParam().script);
    init();
    auto start = Clock::now();
    expect_init_token_seen(kOwnRescanWithDaemon + kSlack);
    drain(); // the empty slots C_InitToken changed
    Waiter w(*module_);
    EXPECT_TRUE(eventually(kReconnect + kSlack, [&] { return server.connections() >= 2; })) << "never tried again";
    const double elapsed = seconds_since(start);
    EXPECT_LE(server.connections(), 2 + static_cast<int>(elapsed / 2.5)) << "reconnecting too often";
    EXPECT_FALSE(w.result(0ms));
    finalize_wakes(w);
}

INSTANTIATE_TEST_SUITE_P(
    Peers, DaemonHandshake,
    testing::Values(
        Handshake{"Silent", [](LineServer& s, int fd) {
                      s.read_line(fd);
                      s.hold();
                  }},
        Handshake{"Refuses", [](LineServer& s, int fd) {
                      s.read_line(fd);
                      LineServer::send(fd, "{\"ok\":false,\"error\":\"bad-request\",\"message\":\"no\"}\n");
                      s.hold();
                  }},
        Handshake{"HangsUp", [](LineServer&, int) {}},
        Handshake{"Garbage", [](LineServer& s, int fd) {
                      s.read_line(fd);
                      LineServer::send(fd, "HTTP/1.1 400 Bad Request\r\n\r\n");
                      s.hold();
                  }},
        Handshake{"HalfReply", [](LineServer& s, int fd) {
                      s.read_line(fd);
                      LineServer::send(fd, "{\"ok\":tr");
                  }},
        Handshake{"EndlessLine", [](LineServer& s, int fd) {
                      s.read_line(fd);
                      LineServer::send(fd, "{\"ok\":true}\n");
                      std::string junk(16 * 1024, 'x');
                      for (int i = 0; i < 8 && !s.stopping(); ++i)
                          LineServer::send(fd, junk);
                      s.hold();
                  }}),
    [](const testing::TestParamInfo<Handshake>& i) { return std::string(i.param.name); });

// With the daemon connected and silent, changes inside this process (which
// the daemon cannot see) are still found by the slower own rescan.
TEST_F(WaitEvent, DaemonConnectedStillSeesInProcessChanges)
{
    LineServer server(socket_, [](LineServer& s, int fd) {
        s.subscribed(fd);
        s.hold();
    });
    init();
    expect_init_token_seen(kOwnRescanWithDaemon + kSlack);
    EXPECT_EQ(server.connections(), 1);
}

// A forked child does not keep or use the parent's daemon connection, which
// is close-on-exec in the parent.
TEST_F(WaitEvent, ForkedChildDropsTheConnection)
{
    LineServer server(socket_, sends(100ms, event_line("key-inserted", 555)));
    init();
    other_process_token("other");
    Waiter w(*module_);
    ASSERT_TRUE(w.result(10s));
    ASSERT_EQ(w.slot(), slot_labelled("other"));
    drain();
    // Descriptors connected to our server's socket.
    auto connected = [&](bool& cloexec) {
        int n = 0;
        cloexec = true;
        for (const auto& e : std::filesystem::directory_iterator("/proc/self/fd")) {
            int fd = std::stoi(e.path().filename());
            sockaddr_un a{};
            socklen_t len = sizeof a;
            if (::getpeername(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0 && a.sun_family == AF_UNIX &&
                socket_.string() == a.sun_path) {
                ++n;
                cloexec = cloexec && (::fcntl(fd, F_GETFD) & FD_CLOEXEC);
            }
        }
        return n;
    };
    bool cloexec = false;
    ASSERT_EQ(connected(cloexec), 1);
    EXPECT_TRUE(cloexec);
    auto r = run_in_child(
        [&](ChildReport& rep) {
            module_->forget_initialized();
            if (!rep.expect_rv(CKR_OK, module_->initialize(), "C_Initialize in the child"))
                return;
            bool c;
            rep.expect(connected(c) == 0, "the child still holds the parent's connection");
            CK_SLOT_ID s;
            rep.expect_rv(CKR_NO_EVENT, fl()->C_WaitForSlotEvent(CKF_DONT_BLOCK, &s, nullptr),
                          "C_WaitForSlotEvent(CKF_DONT_BLOCK) in the child");
            rep.expect_rv(CKR_OK, module_->finalize(), "C_Finalize in the child");
        },
        20s);
    EXPECT_TRUE(r.ok()) << r.describe();
    // The parent's connection still works.
    EXPECT_EQ(connected(cloexec), 1);
}

} // namespace
