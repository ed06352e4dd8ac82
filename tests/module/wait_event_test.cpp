// C_WaitForSlotEvent (PKCS#11 v2.40 §5.5) on ukey's aggregated slot list.
//
// A SoftHSM2 backend always shows one empty (uninitialised) slot; C_InitToken
// on it is an in-process slot event the module must see by its own means
// (no daemon, or a daemon that cannot see inside this process). The ukeyd
// protocol is exercised here only for what the real daemon cannot be made to
// do: a tiny line server in the test plays a peer that closes mid-line,
// sends garbage, refuses, stays silent or floods. Every ukey.conf names a
// private socket path, so a ukeyd running on the machine is never reached.

#include "common.h"

#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <functional>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

using namespace ukeytest;
using modtest::module_path;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

const char kSubscribe[] = "{\"request\":\"subscribe\",\"events\":[\"key-inserted\",\"key-removed\"]}";

std::string event_line(const char* name, CK_SLOT_ID slot)
{
    return std::string("{\"event\":\"") + name +
           "\",\"time\":\"2026-11-21T12:00:00.123Z\",\"time_ms\":1795262400123,\"key\":{\"id\":\"softhsm/x/y/z\","
           "\"source\":\"backend\",\"slot_id\":" +
           std::to_string(slot) + ",\"backend\":\"softhsm\"}}\n";
}

double seconds_since(Clock::time_point t)
{
    return std::chrono::duration<double>(Clock::now() - t).count();
}

// A blocking C_WaitForSlotEvent on its own thread. Destroyed while still
// blocked (a failed test), it C_Finalize's the module to get its thread back.
class Waiter {
public:
    explicit Waiter(Module& m)
        : module_(m), future_(std::async(std::launch::async, [fl = m.fl(), this] {
              CK_SLOT_ID slot = 0;
              CK_RV rv = fl->C_WaitForSlotEvent(0, &slot, nullptr);
              slot_ = slot;
              return rv;
          }))
    {
    }
    ~Waiter()
    {
        if (!rv_ && future_.wait_for(0ms) != std::future_status::ready && module_.initialized())
            module_.finalize();
    }
    // The answer, if it came within `most`.
    std::optional<CK_RV> result(std::chrono::milliseconds most)
    {
        if (!rv_ && future_.wait_for(most) == std::future_status::ready)
            rv_ = future_.get();
        return rv_;
    }
    CK_SLOT_ID slot() const { return slot_; }

private:
    Module& module_;
    std::atomic<CK_SLOT_ID> slot_{0};
    std::optional<CK_RV> rv_;
    std::future<CK_RV> future_;
};

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

    // Reads one request line (up to 2 s); records it.
    std::string read_line(int fd)
    {
        std::string line;
        const auto until = Clock::now() + 2s;
        char c;
        while (Clock::now() < until) {
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

// Waits up to `most` for cond().
bool eventually(std::chrono::milliseconds most, const std::function<bool()>& cond)
{
    const auto until = Clock::now() + most;
    while (Clock::now() < until) {
        if (cond())
            return true;
        std::this_thread::sleep_for(20ms);
    }
    return cond();
}

class WaitEvent : public testing::Test {
protected:
    void SetUp() override
    {
        env_ = std::make_unique<TestEnv>();
        socket_ = env_->dir() / "ukeyd.sock";
        env_->write_ukey_conf(env_->ukey_conf_text() + "\n[daemon]\nsocket = \"" + socket_.string() + "\"\n");
        module_ = std::make_unique<Module>(module_path());
    }
    void TearDown() override
    {
        module_.reset();
        env_.reset();
    }
    void init() { ASSERT_RV(CKR_OK, module_->initialize()); }
    CK_FUNCTION_LIST* fl() { return module_->fl(); }

    // SoftHSM2's free slot: a token that is present and not initialised.
    CK_SLOT_ID empty_slot()
    {
        for (CK_SLOT_ID s : slot_list(fl(), true))
            if (!(token_info(fl(), s).flags & CKF_TOKEN_INITIALIZED))
                return s;
        throw std::runtime_error("no empty SoftHSM2 slot");
    }
    // C_InitToken through ukey on the free slot; the Key's (new) slot ID.
    CK_SLOT_ID init_token(const std::string& label)
    {
        CK_SLOT_ID slot = empty_slot();
        std::string pin = modtest::kDefaultToken.so_pin;
        std::string padded = padded_label(label);
        check(fl()->C_InitToken(slot, reinterpret_cast<CK_UTF8CHAR_PTR>(pin.data()), pin.size(),
                                reinterpret_cast<CK_UTF8CHAR_PTR>(padded.data())),
              "C_InitToken");
        return slot_by_label(fl(), label);
    }
    // Every event CKF_DONT_BLOCK has now, in order.
    std::vector<CK_SLOT_ID> drain()
    {
        std::vector<CK_SLOT_ID> out;
        for (int i = 0; i < 20; ++i) {
            CK_SLOT_ID s = 0;
            CK_RV rv = fl()->C_WaitForSlotEvent(CKF_DONT_BLOCK, &s, nullptr);
            if (rv == CKR_NO_EVENT)
                return out;
            EXPECT_RV(CKR_OK, rv);
            if (rv != CKR_OK)
                return out;
            out.push_back(s);
        }
        ADD_FAILURE() << "CKF_DONT_BLOCK never ran out of events";
        return out;
    }
    // A blocked waiter returns CKR_CRYPTOKI_NOT_INITIALIZED promptly after C_Finalize.
    void finalize_wakes(Waiter& w)
    {
        auto t = Clock::now();
        ASSERT_RV(CKR_OK, module_->finalize());
        auto rv = w.result(2s);
        ASSERT_TRUE(rv) << "C_WaitForSlotEvent still blocked 2 s after C_Finalize";
        EXPECT_RV(CKR_CRYPTOKI_NOT_INITIALIZED, *rv);
        EXPECT_LT(seconds_since(t), 1.0) << "C_Finalize + wake-up took too long";
    }
    // Blocks, C_InitToken's on another thread: the Key's ID within `most`.
    void expect_init_token_seen(std::chrono::milliseconds most)
    {
        Waiter w(*module_);
        ASSERT_FALSE(w.result(300ms)) << "returned at once: " << rv_name(*w.result(0ms)) << " slot " << w.slot();
        auto t = Clock::now();
        CK_SLOT_ID key = 0;
        std::thread other([&] { key = init_token("fresh"); });
        other.join();
        auto rv = w.result(most);
        if (!rv) {
            finalize_wakes(w);
            FAIL() << "C_InitToken not seen within " << most.count() << " ms";
        }
        EXPECT_RV(CKR_OK, *rv);
        EXPECT_EQ(w.slot(), key) << "expected the new Key's slot ID first";
        EXPECT_LT(seconds_since(t), most.count() / 1000.0);
    }

    std::unique_ptr<TestEnv> env_;
    std::unique_ptr<Module> module_;
    std::filesystem::path socket_;
};

// ---- arguments ---------------------------------------------------------------

TEST_F(WaitEvent, NotInitialized)
{
    CK_SLOT_ID s;
    EXPECT_RV(CKR_CRYPTOKI_NOT_INITIALIZED, fl()->C_WaitForSlotEvent(CKF_DONT_BLOCK, &s, nullptr));
    EXPECT_RV(CKR_CRYPTOKI_NOT_INITIALIZED, fl()->C_WaitForSlotEvent(0, &s, nullptr));
}

TEST_F(WaitEvent, ArgumentErrors)
{
    init();
    CK_SLOT_ID s = 0;
    int reserved = 0;
    // None of these may block: the arguments are checked first.
    EXPECT_RV(CKR_ARGUMENTS_BAD, fl()->C_WaitForSlotEvent(CKF_DONT_BLOCK, nullptr, nullptr));
    EXPECT_RV(CKR_ARGUMENTS_BAD, fl()->C_WaitForSlotEvent(0, nullptr, nullptr));
    EXPECT_RV(CKR_ARGUMENTS_BAD, fl()->C_WaitForSlotEvent(CKF_DONT_BLOCK, &s, &reserved));
    EXPECT_RV(CKR_ARGUMENTS_BAD, fl()->C_WaitForSlotEvent(0, &s, &reserved));
    EXPECT_RV(CKR_ARGUMENTS_BAD, fl()->C_WaitForSlotEvent(2, &s, nullptr));
    EXPECT_RV(CKR_ARGUMENTS_BAD, fl()->C_WaitForSlotEvent(CKF_DONT_BLOCK | 0x100, &s, nullptr));
    EXPECT_RV(CKR_ARGUMENTS_BAD, fl()->C_WaitForSlotEvent(~CK_FLAGS(0), &s, nullptr));
    EXPECT_EQ(s, 0u) << "*pSlot written on an argument error";
}

// ---- CKF_DONT_BLOCK ----------------------------------------------------------

TEST_F(WaitEvent, DontBlockQuietIsNoEvent)
{
    init();
    for (int i = 0; i < 3; ++i) {
        CK_SLOT_ID s = 0;
        EXPECT_RV(CKR_NO_EVENT, fl()->C_WaitForSlotEvent(CKF_DONT_BLOCK, &s, nullptr));
    }
    // Listing slots is not an event either.
    slot_list(fl(), false);
    CK_SLOT_ID s = 0;
    EXPECT_RV(CKR_NO_EVENT, fl()->C_WaitForSlotEvent(CKF_DONT_BLOCK, &s, nullptr));
}

TEST_F(WaitEvent, DontBlockReportsInitTokenOnce)
{
    init();
    const CK_SLOT_ID old_token = slot_by_label(fl(), modtest::kDefaultToken.label);
    const CK_SLOT_ID key = init_token("fresh");
    auto events = drain();
    ASSERT_FALSE(events.empty()) << "C_InitToken on the empty slot not reported";
    EXPECT_EQ(events.front(), key) << "the new Key comes first";
    EXPECT_EQ(std::count(events.begin(), events.end(), key), 1);
    EXPECT_EQ(std::count(events.begin(), events.end(), old_token), 0) << "an unchanged token reported";
    std::set<CK_SLOT_ID> unique(events.begin(), events.end());
    EXPECT_EQ(unique.size(), events.size()) << "a slot reported twice";
    // Every slot reported is one the application can ask about.
    for (CK_SLOT_ID s : events) {
        CK_SLOT_INFO info;
        EXPECT_RV(CKR_OK, fl()->C_GetSlotInfo(s, &info)) << "slot " << s;
    }
    EXPECT_TRUE(drain().empty()) << "reported again";

    // Once more on the empty slot SoftHSM2 added (IDs are hashes: the Key
    // coming first is not a matter of ID order).
    const CK_SLOT_ID second = init_token("second");
    events = drain();
    ASSERT_FALSE(events.empty());
    EXPECT_EQ(events.front(), second);
    EXPECT_EQ(std::count(events.begin(), events.end(), second), 1);
    EXPECT_EQ(std::count(events.begin(), events.end(), key), 0);
}

// ---- blocking ----------------------------------------------------------------

TEST_F(WaitEvent, BlockingSeesInitTokenOnAnotherThread)
{
    init();
    expect_init_token_seen(2500ms);
    // What the blocking call reported is not reported again.
    CK_SLOT_ID key = slot_by_label(fl(), "fresh");
    auto rest = drain();
    EXPECT_EQ(std::count(rest.begin(), rest.end(), key), 0);
}

TEST_F(WaitEvent, BlockingQuietBlocksUntilFinalize)
{
    init();
    Waiter w(*module_);
    auto rv = w.result(1500ms);
    ASSERT_FALSE(rv) << "returned " << rv_name(*rv) << " (slot " << w.slot() << ") with nothing happening";
    finalize_wakes(w);
}

TEST_F(WaitEvent, FinalizeWakesEveryWaiter)
{
    init();
    std::vector<std::unique_ptr<Waiter>> ws;
    for (int i = 0; i < 4; ++i)
        ws.push_back(std::make_unique<Waiter>(*module_));
    // Mixed with CKF_DONT_BLOCK callers meanwhile.
    for (int i = 0; i < 5; ++i) {
        CK_SLOT_ID s;
        EXPECT_RV(CKR_NO_EVENT, fl()->C_WaitForSlotEvent(CKF_DONT_BLOCK, &s, nullptr));
        std::this_thread::sleep_for(100ms);
    }
    auto t = Clock::now();
    ASSERT_RV(CKR_OK, module_->finalize());
    for (auto& w : ws) {
        auto rv = w->result(2s);
        ASSERT_TRUE(rv) << "a waiter still blocked after C_Finalize";
        EXPECT_RV(CKR_CRYPTOKI_NOT_INITIALIZED, *rv);
    }
    EXPECT_LT(seconds_since(t), 1.0);
    // And the module starts again.
    init();
    CK_SLOT_ID s;
    EXPECT_RV(CKR_NO_EVENT, fl()->C_WaitForSlotEvent(CKF_DONT_BLOCK, &s, nullptr));
}

// C_Finalize while callers keep coming in (blocking ones, and CKF_DONT_BLOCK
// ones in a tight loop): every one ends with CKR_CRYPTOKI_NOT_INITIALIZED
// and none uses the Proxy after it is freed (ASan tells).
TEST_F(WaitEvent, FinalizeRacesWithCallers)
{
    for (int round = 0; round < 30; ++round) {
        SCOPED_TRACE("round " + std::to_string(round));
        init();
        std::vector<std::future<CK_RV>> callers;
        for (int i = 0; i < 4; ++i)
            callers.push_back(std::async(std::launch::async, [fl = fl(), i] {
                CK_RV rv;
                do {
                    CK_SLOT_ID s;
                    rv = fl->C_WaitForSlotEvent(i % 2 ? 0 : CKF_DONT_BLOCK, &s, nullptr);
                } while (rv == CKR_NO_EVENT || rv == CKR_OK);
                return rv;
            }));
        std::this_thread::sleep_for(std::chrono::milliseconds(round % 7 * 3));
        ASSERT_RV(CKR_OK, module_->finalize());
        for (auto& c : callers) {
            ASSERT_EQ(c.wait_for(2s), std::future_status::ready) << "a caller still inside after C_Finalize";
            EXPECT_RV(CKR_CRYPTOKI_NOT_INITIALIZED, c.get());
        }
    }
}

// Several blocked threads: each event goes to one of them, none twice.
TEST_F(WaitEvent, SeveralWaitersShareTheEvents)
{
    init();
    std::vector<std::unique_ptr<Waiter>> ws;
    for (int i = 0; i < 3; ++i)
        ws.push_back(std::make_unique<Waiter>(*module_));
    std::this_thread::sleep_for(200ms);
    const CK_SLOT_ID key = init_token("fresh");
    std::this_thread::sleep_for(2500ms);
    std::vector<CK_SLOT_ID> got;
    for (auto& w : ws)
        if (auto rv = w->result(0ms)) {
            EXPECT_RV(CKR_OK, *rv);
            got.push_back(w->slot());
        }
    EXPECT_EQ(std::count(got.begin(), got.end(), key), 1) << got.size() << " waiter(s) returned";
    std::set<CK_SLOT_ID> unique(got.begin(), got.end());
    EXPECT_EQ(unique.size(), got.size()) << "one event given to two waiters";
    for (CK_SLOT_ID s : drain())
        EXPECT_EQ(unique.count(s), 0u) << "slot " << s << " reported again";
    ASSERT_RV(CKR_OK, module_->finalize());
    for (auto& w : ws) {
        auto rv = w->result(2s);
        ASSERT_TRUE(rv) << "a waiter still blocked after C_Finalize";
    }
}

// Application mutex callbacks without CKF_OS_LOCKING_OK: no OS waiting of
// ukey's own, but the same behaviour.
TEST_F(WaitEvent, WithApplicationMutexes)
{
    struct M {
        static CK_RV create(CK_VOID_PTR_PTR p)
        {
            *p = new std::mutex;
            return CKR_OK;
        }
        static CK_RV destroy(CK_VOID_PTR p)
        {
            delete static_cast<std::mutex*>(p);
            return CKR_OK;
        }
        static CK_RV lock(CK_VOID_PTR p)
        {
            static_cast<std::mutex*>(p)->lock();
            return CKR_OK;
        }
        static CK_RV unlock(CK_VOID_PTR p)
        {
            static_cast<std::mutex*>(p)->unlock();
            return CKR_OK;
        }
    };
    CK_C_INITIALIZE_ARGS args{};
    args.CreateMutex = M::create;
    args.DestroyMutex = M::destroy;
    args.LockMutex = M::lock;
    args.UnlockMutex = M::unlock;
    ASSERT_RV(CKR_OK, module_->initialize(&args));
    // Two waiters: one reads, the other polls for its turn.
    Waiter w1(*module_), w2(*module_);
    ASSERT_FALSE(w1.result(300ms));
    const CK_SLOT_ID key = init_token("fresh");
    EXPECT_TRUE(eventually(2500ms, [&] { return w1.result(0ms) || w2.result(0ms); })) << "C_InitToken not seen";
    std::this_thread::sleep_for(200ms);
    std::vector<CK_SLOT_ID> got;
    for (Waiter* w : {&w1, &w2})
        if (auto rv = w->result(0ms)) {
            EXPECT_RV(CKR_OK, *rv);
            got.push_back(w->slot());
        }
    EXPECT_EQ(std::count(got.begin(), got.end(), key), 1);
    auto t = Clock::now();
    ASSERT_RV(CKR_OK, module_->finalize());
    for (Waiter* w : {&w1, &w2})
        EXPECT_TRUE(w->result(2s)) << "still blocked after C_Finalize";
    EXPECT_LT(seconds_since(t), 1.0);
}

// ---- a daemon socket configured, no daemon ----------------------------------

TEST_F(WaitEvent, SocketFileWithoutDaemon)
{
    // A socket file nobody listens on (a daemon that died): connect() is
    // refused; the module falls back to its own means.
    {
        int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
        sockaddr_un a{};
        a.sun_family = AF_UNIX;
        std::strncpy(a.sun_path, socket_.c_str(), sizeof a.sun_path - 1);
        ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
        ::close(fd);
    }
    init();
    expect_init_token_seen(2500ms);
}

// ---- protocol peers the real daemon cannot be made to be ---------------------

// Subscribes with exactly the documented request; survives garbage lines and
// still reports the good line after them.
TEST_F(WaitEvent, DaemonGarbageLinesAreSurvived)
{
    LineServer server(socket_, [](LineServer& s, int fd) {
        s.read_line(fd);
        LineServer::send(fd, "{\"ok\":true,\"subscribed\":true}\n");
        std::this_thread::sleep_for(200ms);
        LineServer::send(fd, "not json at all\n");
        LineServer::send(fd, "[1,2,3]\n");
        LineServer::send(fd, "\n");
        LineServer::send(fd, std::string("\x00\xff\xfe{\"event\"", 10) + "\n");
        LineServer::send(fd, "{\"ok\":false,\"error\":\"bad-request\",\"message\":\"x\"}\n");
        LineServer::send(fd, "{\"event\":\"key-inserted\"}\n");
        LineServer::send(fd, "{\"event\":\"key-inserted\",\"key\":\"softhsm\"}\n");
        LineServer::send(fd, "{\"event\":\"key-inserted\",\"key\":{\"slot_id\":-5}}\n");
        LineServer::send(fd, "{\"event\":\"key-inserted\",\"key\":{\"slot_id\":\"12\"}}\n");
        LineServer::send(fd, "{\"event\":\"key-inserted\",\"key\":{\"slot_id\":1.5}}\n");
        LineServer::send(fd, "{\"event\":\"key-inserted\",\"key\":{\"slot_id\":0}}\n");
        LineServer::send(fd, "{\"event\":\"key-inserted\",\"key\":{\"slot_id\":1e400}}\n");
        LineServer::send(fd, "{\"event\":\"key-inserted\",\"key\":{\"slot_id\":99999999999999999999999}}\n");
        LineServer::send(fd, "{\"event\":\"key-inserted\",\"key\":{\"source\":\"pcsc\",\"id\":\"pcsc:r\"}}\n");
        LineServer::send(fd, "{\"event\":\"reader-added\",\"reader\":\"r\",\"key\":{\"slot_id\":5}}\n");
        LineServer::send(fd, "{\"event\":\"pin-locked\",\"which\":\"user\",\"key\":{\"slot_id\":6}}\n");
        LineServer::send(fd, "{\"event\":\"key-inserted\",\"key\":{\"slot_id\":4242},\"unterminated\":\n");
        LineServer::send(fd, event_line("key-inserted", 4242));
        s.hold();
    });
    init();
    Waiter w(*module_);
    auto rv = w.result(4s);
    ASSERT_TRUE(rv) << "the good line after the garbage was not reported";
    EXPECT_RV(CKR_OK, *rv);
    EXPECT_EQ(w.slot(), 4242u);
    ASSERT_FALSE(server.requests().empty());
    EXPECT_EQ(server.requests().front(), kSubscribe);
    EXPECT_EQ(server.connections(), 1) << "garbage lines must not cost the connection";
    EXPECT_TRUE(drain().empty()) << "a garbage line became an event";
}

// An event line split across writes is put together; key-removed reports the slot.
TEST_F(WaitEvent, DaemonLineInPieces)
{
    LineServer server(socket_, [](LineServer& s, int fd) {
        s.read_line(fd);
        LineServer::send(fd, "{\"ok\":true,\"subscribed\":true}\n");
        std::string line = event_line("key-removed", 31337) + event_line("key-inserted", 31338);
        for (char c : line) {
            LineServer::send(fd, std::string(1, c));
            if (c == ':' || c == '\n')
                std::this_thread::sleep_for(10ms);
        }
        s.hold();
    });
    init();
    Waiter w1(*module_);
    auto rv = w1.result(4s);
    ASSERT_TRUE(rv);
    EXPECT_RV(CKR_OK, *rv);
    EXPECT_EQ(w1.slot(), 31337u);
    Waiter w2(*module_);
    rv = w2.result(4s);
    ASSERT_TRUE(rv);
    EXPECT_RV(CKR_OK, *rv);
    EXPECT_EQ(w2.slot(), 31338u);
}

// Once subscribed, CKF_DONT_BLOCK also takes what the daemon sent, once.
TEST_F(WaitEvent, DaemonEventsReachDontBlock)
{
    LineServer server(socket_, [](LineServer& s, int fd) {
        s.read_line(fd);
        LineServer::send(fd, "{\"ok\":true,\"subscribed\":true}\n");
        std::this_thread::sleep_for(100ms);
        LineServer::send(fd, event_line("key-inserted", 555));
        std::this_thread::sleep_for(500ms);
        LineServer::send(fd, event_line("key-removed", 556) + event_line("key-inserted", 556));
        s.hold();
    });
    init();
    Waiter w(*module_);
    ASSERT_TRUE(w.result(4s));
    EXPECT_EQ(w.slot(), 555u);
    std::this_thread::sleep_for(1s);
    EXPECT_EQ(drain(), std::vector<CK_SLOT_ID>{556});
}

// The daemon closes mid-line: no event from the half line, the own means
// take over, and the module connects again a few seconds later.
TEST_F(WaitEvent, DaemonClosesMidLine)
{
    LineServer server(socket_, [](LineServer& s, int fd) {
        s.read_line(fd);
        LineServer::send(fd, "{\"ok\":true,\"subscribed\":true}\n");
        if (s.connections() == 1) {
            std::this_thread::sleep_for(200ms);
            LineServer::send(fd, "{\"event\":\"key-inserted\",\"key\":{\"slot_id\":77");
            return; // closes
        }
        s.hold();
    });
    init();
    expect_init_token_seen(3000ms);
    EXPECT_GE(server.connections(), 1);
    // The slot of the half line never comes.
    for (CK_SLOT_ID s : drain())
        EXPECT_NE(s, 77u);
    // Reconnects while a caller is blocked.
    Waiter w(*module_);
    EXPECT_TRUE(eventually(8s, [&] { return server.connections() >= 2; })) << "never reconnected";
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
    expect_init_token_seen(3500ms);
    drain(); // the empty slots C_InitToken changed
    Waiter w(*module_);
    EXPECT_TRUE(eventually(8s, [&] { return server.connections() >= 2; })) << "never tried again";
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
        s.read_line(fd);
        LineServer::send(fd, "{\"ok\":true,\"subscribed\":true}\n");
        s.hold();
    });
    init();
    expect_init_token_seen(7000ms);
    EXPECT_EQ(server.connections(), 1);
}

// A forked child does not keep or use the parent's daemon connection, which
// is close-on-exec in the parent.
TEST_F(WaitEvent, ForkedChildDropsTheConnection)
{
    LineServer server(socket_, [](LineServer& s, int fd) {
        s.read_line(fd);
        LineServer::send(fd, "{\"ok\":true,\"subscribed\":true}\n");
        std::this_thread::sleep_for(100ms);
        LineServer::send(fd, event_line("key-inserted", 555));
        s.hold();
    });
    init();
    Waiter w(*module_);
    ASSERT_TRUE(w.result(4s));
    ASSERT_EQ(w.slot(), 555u);
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
