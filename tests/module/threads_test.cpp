// Multi-threaded use of libukey-pkcs11.so (initialised with
// CKF_OS_LOCKING_OK, PKCS#11 v2.40 C_Initialize / "Functions" threading
// model): parallel signing on per-thread sessions, every signature verified
// with OpenSSL, and parallel session open/close churn.

#include "common.h"

#include <atomic>
#include <barrier>
#include <chrono>
#include <map>
#include <mutex>
#include <set>
#include <thread>

using namespace ukeytest;
using modtest::module_path;

namespace {

constexpr int kThreads = 8;

class Threads : public testing::Test {
protected:
    void SetUp() override
    {
        env_ = std::make_unique<TestEnv>();
        module_ = std::make_unique<Module>(module_path());
        ASSERT_RV(CKR_OK, module_->initialize());
        slot_ = slot_by_label(fl(), token_.label);
        session_ = open_session(fl(), slot_);
        login(fl(), session_, CKU_USER, token_.user_pin);
    }
    void TearDown() override
    {
        module_.reset();
        env_.reset();
    }
    CK_FUNCTION_LIST* fl() { return module_->fl(); }

    const TokenSpec token_{};
    std::unique_ptr<TestEnv> env_;
    std::unique_ptr<Module> module_;
    CK_SLOT_ID slot_ = 0;
    CK_SESSION_HANDLE session_ = 0;  // keeps the user logged in
};

// 8 threads, each with its own session, sign in parallel with an RSA-2048
// and an EC P-256 key; each thread reads the public keys itself with
// C_GetAttributeValue and verifies every signature with OpenSSL.
TEST_F(Threads, ParallelSigningEachThreadOwnSession)
{
    const KeyPair rsa = generate_key_pair(fl(), session_, KeyKind::Rsa2048, "threads-rsa");
    const KeyPair ec = generate_key_pair(fl(), session_, KeyKind::EcP256, "threads-ec");
    constexpr int kRounds = 24;  // per thread, alternating keys

    std::barrier start(kThreads);
    std::mutex mu;
    std::vector<std::string> errors;
    std::atomic<int> verified{0};
    auto fail = [&](const std::string& e) {
        std::lock_guard<std::mutex> lock(mu);
        errors.push_back(e);
    };

    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t)
        threads.emplace_back([&, t] {
            CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
            bool started = false;
            try {
                s = open_session(fl(), slot_, t % 2 == 0);
                EvpPkey rsa_pub = public_key(fl(), s, rsa);
                EvpPkey ec_pub = public_key(fl(), s, ec);
                started = true;
                start.arrive_and_wait();
                for (int i = 0; i < kRounds; ++i) {
                    bool use_rsa = (i + t) % 2 == 0;
                    const KeyPair& k = use_rsa ? rsa : ec;
                    std::string msg = "thread " + std::to_string(t) + " round " + std::to_string(i);
                    std::vector<uint8_t> data(msg.begin(), msg.end());
                    auto sig = sign(fl(), s, k, data);
                    if (!verify(use_rsa ? rsa_pub.get() : ec_pub.get(), k.kind, data, sig))
                        fail(msg + ": " + to_string(k.kind) + " signature does not verify");
                    else
                        ++verified;
                }
            } catch (const std::exception& e) {
                fail("thread " + std::to_string(t) + ": " + e.what());
                if (!started)
                    start.arrive_and_drop();  // do not leave the others waiting
            }
            if (s != CK_INVALID_HANDLE && fl()->C_CloseSession(s) != CKR_OK)
                fail("thread " + std::to_string(t) + ": C_CloseSession failed");
        });
    for (auto& th : threads)
        th.join();
    for (const auto& e : errors)
        ADD_FAILURE() << e;
    EXPECT_EQ(verified, kThreads * kRounds);
    // The module is still consistent afterwards.
    auto sig = sign(fl(), session_, ec, {1, 2, 3});
    EXPECT_TRUE(verify(public_key(fl(), session_, ec).get(), KeyKind::EcP256, {1, 2, 3}, sig));
}

// Several threads share one key but run their multi-part (C_SignUpdate)
// operations interleaved on their own sessions: no cross-talk between the
// per-session operation states.
TEST_F(Threads, InterleavedMultiPartSigning)
{
    const KeyPair rsa = generate_key_pair(fl(), session_, KeyKind::Rsa2048, "threads-mp");
    EvpPkey pub = public_key(fl(), session_, rsa);
    std::barrier step(kThreads);
    std::mutex mu;
    std::vector<std::string> errors;
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t)
        threads.emplace_back([&, t] {
            std::string err;
            CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
            std::vector<uint8_t> all;
            int arrived = 0;
            try {
                s = open_session(fl(), slot_, false);
                CK_MECHANISM mech{CKM_SHA256_RSA_PKCS, nullptr, 0};
                check(fl()->C_SignInit(s, &mech, rsa.priv), "C_SignInit");
                for (int part = 0; part < 6; ++part) {
                    step.arrive_and_wait();  // all threads update "at once"
                    ++arrived;
                    std::string chunk = "t" + std::to_string(t) + "p" + std::to_string(part) + ";";
                    all.insert(all.end(), chunk.begin(), chunk.end());
                    check(fl()->C_SignUpdate(s, reinterpret_cast<CK_BYTE*>(chunk.data()),
                                             chunk.size()),
                          "C_SignUpdate");
                }
                CK_ULONG len = 0;
                check(fl()->C_SignFinal(s, nullptr, &len), "C_SignFinal(length)");
                std::vector<uint8_t> sig(len);
                check(fl()->C_SignFinal(s, sig.data(), &len), "C_SignFinal");
                sig.resize(len);
                if (!verify(pub.get(), KeyKind::Rsa2048, all, sig))
                    err = "multi-part signature does not verify";
            } catch (const std::exception& e) {
                err = e.what();
                if (arrived < 6)
                    step.arrive_and_drop();  // do not leave the others waiting
            }
            if (s != CK_INVALID_HANDLE)
                fl()->C_CloseSession(s);
            if (!err.empty()) {
                std::lock_guard<std::mutex> lock(mu);
                errors.push_back("thread " + std::to_string(t) + ": " + err);
            }
        });
    for (auto& th : threads)
        th.join();
    for (const auto& e : errors)
        ADD_FAILURE() << e;
}

// Parallel open/close churn. Each thread keeps a few sessions open at a time;
// two live sessions must never share a handle, every handle must report the
// right slot, and after the churn the closed handles are invalid and the
// token's session count is back where it was.
TEST_F(Threads, ParallelOpenCloseSessionChurn)
{
    constexpr int kIterations = 150;
    constexpr int kHeld = 4;
    CK_TOKEN_INFO before = token_info(fl(), slot_);

    std::mutex mu;
    std::set<CK_SESSION_HANDLE> live = {session_};
    std::set<CK_SESSION_HANDLE> ever;
    std::vector<std::string> errors;
    auto fail = [&](const std::string& e) {
        std::lock_guard<std::mutex> lock(mu);
        if (errors.size() < 20)
            errors.push_back(e);
    };
    std::barrier start(kThreads);
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t)
        threads.emplace_back([&, t] {
            start.arrive_and_wait();
            std::vector<CK_SESSION_HANDLE> held;
            for (int i = 0; i < kIterations; ++i) {
                CK_FLAGS flags = CKF_SERIAL_SESSION | ((i + t) % 2 ? CKF_RW_SESSION : 0);
                CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
                CK_RV rv = fl()->C_OpenSession(slot_, flags, nullptr, nullptr, &s);
                if (rv != CKR_OK) {
                    fail("C_OpenSession: " + rv_name(rv));
                    continue;
                }
                {
                    std::lock_guard<std::mutex> lock(mu);
                    if (s == CK_INVALID_HANDLE || !live.insert(s).second)
                        errors.push_back("C_OpenSession returned handle " + std::to_string(s) +
                                         " which is already in use by a live session");
                    ever.insert(s);
                }
                CK_SESSION_INFO info{};
                rv = fl()->C_GetSessionInfo(s, &info);
                if (rv != CKR_OK)
                    fail("C_GetSessionInfo: " + rv_name(rv));
                else if (info.slotID != slot_ ||
                         ((info.flags & CKF_RW_SESSION) != 0) != ((flags & CKF_RW_SESSION) != 0))
                    fail("C_GetSessionInfo reports another slot or R/W mode");
                else if (info.state != ((flags & CKF_RW_SESSION) ? CKS_RW_USER_FUNCTIONS
                                                                 : CKS_RO_USER_FUNCTIONS))
                    fail("new session does not see the application's user login");
                CK_BYTE rnd[16];
                if ((rv = fl()->C_GenerateRandom(s, rnd, sizeof rnd)) != CKR_OK)
                    fail("C_GenerateRandom: " + rv_name(rv));
                held.push_back(s);
                if (held.size() == kHeld || i == kIterations - 1) {
                    for (CK_SESSION_HANDLE h : held) {
                        {
                            std::lock_guard<std::mutex> lock(mu);
                            live.erase(h);
                        }
                        if ((rv = fl()->C_CloseSession(h)) != CKR_OK)
                            fail("C_CloseSession: " + rv_name(rv));
                    }
                    held.clear();
                }
            }
        });
    for (auto& th : threads)
        th.join();
    for (const auto& e : errors)
        ADD_FAILURE() << e;

    // Only the main session is left.
    CK_SESSION_INFO info{};
    EXPECT_RV(CKR_OK, fl()->C_GetSessionInfo(session_, &info));
    EXPECT_EQ(info.state, CKS_RW_USER_FUNCTIONS) << "login lost during churn";
    int checked = 0;
    for (CK_SESSION_HANDLE h : ever) {
        if (h == session_)
            continue;
        EXPECT_RV(CKR_SESSION_HANDLE_INVALID, fl()->C_GetSessionInfo(h, &info))
            << "closed session handle " << h;
        if (++checked == 50)
            break;
    }
    CK_TOKEN_INFO after = token_info(fl(), slot_);
    if (before.ulSessionCount != CK_UNAVAILABLE_INFORMATION &&
        after.ulSessionCount != CK_UNAVAILABLE_INFORMATION) {
        EXPECT_EQ(after.ulSessionCount, before.ulSessionCount);
        EXPECT_EQ(after.ulRwSessionCount, before.ulRwSessionCount);
    }
}

// C_CloseAllSessions racing with threads that open and use sessions: no
// crash, and every call returns a defined code (the sessions a thread holds
// may be closed under it: CKR_SESSION_HANDLE_INVALID / CKR_SESSION_CLOSED).
TEST_F(Threads, CloseAllSessionsRacesWithUsers)
{
    std::atomic<bool> stop{false};
    std::mutex mu;
    std::vector<std::string> errors;
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads - 1; ++t)
        threads.emplace_back([&] {
            while (!stop) {
                CK_SESSION_HANDLE s;
                CK_RV rv = fl()->C_OpenSession(slot_, CKF_SERIAL_SESSION, nullptr, nullptr, &s);
                if (rv != CKR_OK) {
                    std::lock_guard<std::mutex> lock(mu);
                    errors.push_back("C_OpenSession: " + rv_name(rv));
                    return;
                }
                CK_BYTE rnd[8];
                for (int i = 0; i < 5; ++i) {
                    rv = fl()->C_GenerateRandom(s, rnd, sizeof rnd);
                    if (rv != CKR_OK && rv != CKR_SESSION_HANDLE_INVALID &&
                        rv != CKR_SESSION_CLOSED) {
                        std::lock_guard<std::mutex> lock(mu);
                        errors.push_back("C_GenerateRandom: " + rv_name(rv));
                    }
                }
                rv = fl()->C_CloseSession(s);
                if (rv != CKR_OK && rv != CKR_SESSION_HANDLE_INVALID && rv != CKR_SESSION_CLOSED) {
                    std::lock_guard<std::mutex> lock(mu);
                    errors.push_back("C_CloseSession: " + rv_name(rv));
                }
            }
        });
    for (int i = 0; i < 30; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
        CK_RV rv = fl()->C_CloseAllSessions(slot_);
        if (rv != CKR_OK)
            ADD_FAILURE() << "C_CloseAllSessions: " << rv_name(rv);
    }
    stop = true;
    for (auto& th : threads)
        th.join();
    for (const auto& e : errors)
        ADD_FAILURE() << e;
    // Everything closed now; the module still works.
    ASSERT_RV(CKR_OK, fl()->C_CloseAllSessions(slot_));
    CK_SESSION_HANDLE s = open_session(fl(), slot_);
    EXPECT_RV(CKR_OK, fl()->C_CloseSession(s));
}

}  // namespace
