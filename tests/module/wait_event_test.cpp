// C_WaitForSlotEvent by the module's own means (wait_event.h): arguments,
// CKF_DONT_BLOCK, blocking callers, C_Finalize, application mutexes, and a
// daemon socket that nobody serves.
#include "wait_event.h"

using namespace waitevent;

namespace {

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
    expect_init_token_seen(kOwnRescan + kSlack);
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
        auto rv = w->result(kWakeBound);
        ASSERT_TRUE(rv) << "a waiter still blocked after C_Finalize";
        EXPECT_RV(CKR_CRYPTOKI_NOT_INITIALIZED, *rv);
    }
    std::printf("C_Finalize + 4 wake-ups: %.3f s\n", seconds_since(t));
    EXPECT_LT(seconds_since(t), kWakeBound.count() / 1000.0);
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
            ASSERT_EQ(c.wait_for(kWakeBound), std::future_status::ready) << "a caller still inside after C_Finalize";
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
    // One of them returns (within a rescan interval, bounded generously);
    // then a settle of more than one rescan interval, in which a second
    // waiter given the same event would return too (a negative check).
    const auto t = Clock::now();
    EXPECT_TRUE(eventually(kOwnRescan + kSlack, [&] {
        for (auto& w : ws)
            if (w->result(0ms))
                return true;
        return false;
    })) << "C_InitToken not seen by any waiter";
    std::printf("a waiter returned %.3f s after C_InitToken\n", seconds_since(t));
    std::this_thread::sleep_for(kOwnRescan + 500ms);
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
        auto rv = w->result(kWakeBound);
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
    // One returns (bounded generously); then a settle of more than one
    // rescan interval for a duplicate to show (a negative check).
    EXPECT_TRUE(eventually(kOwnRescan + kSlack, [&] { return w1.result(0ms) || w2.result(0ms); }))
        << "C_InitToken not seen";
    std::this_thread::sleep_for(kOwnRescan + 500ms);
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
        EXPECT_TRUE(w->result(kWakeBound)) << "still blocked after C_Finalize";
    std::printf("C_Finalize + wake-ups: %.3f s\n", seconds_since(t));
    EXPECT_LT(seconds_since(t), kWakeBound.count() / 1000.0);
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
    expect_init_token_seen(kOwnRescan + kSlack);
}

} // namespace
