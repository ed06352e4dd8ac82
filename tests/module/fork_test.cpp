// fork() behaviour of libukey-pkcs11.so.
//
// PKCS#11 v2.40 ("Applications and processes"; usage guide v2.40 §2.5.2,
// v2.20 §6.6.1): after fork() the child is not a Cryptoki application; it
// "needs to perform its own C_Initialize call" and log in again. Using
// Cryptoki in the child without that is undefined by the standard ("Ideally,
// such an attempt would return the value CKR_CRYPTOKI_NOT_INITIALIZED");
// ukey promises exactly that ideal behaviour, and no deadlock.
//
// Every child runs under run_in_child(): a hard timeout in the parent plus
// alarm() in the child, so a deadlock fails the test instead of hanging it.
// The suite runs twice: with SoftHSM2's default configuration and with
// "library.reset_on_fork = true" (SoftHSM2's own fork handling).

#include "common.h"

#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <thread>

#include <openssl/evp.h>

using namespace ukeytest;
using modtest::module_path;
using namespace std::chrono_literals;

namespace {

std::vector<uint8_t> sha256_of(const std::vector<uint8_t>& data)
{
    std::vector<uint8_t> out(32);
    unsigned int n = 0;
    if (EVP_Digest(data.data(), data.size(), out.data(), &n, EVP_sha256(), nullptr) != 1 || n != 32)
        throw std::runtime_error("SHA-256 failed");
    return out;
}


const auto kChildTimeout = 20s;
const std::vector<uint8_t> kData = {'f', 'o', 'r', 'k', '-', 't', 'e', 's', 't'};

struct ForkParam {
    const char* name;
    const char* softhsm_conf_extra;
};

void PrintTo(const ForkParam& p, std::ostream* os)
{
    *os << p.name;
}

class Fork : public modtest::ModuleTest<testing::TestWithParam<ForkParam>> {
protected:
    void SetUp() override
    {
        BackendSpec b;
        b.softhsm_conf_extra = GetParam().softhsm_conf_extra;
        load(std::make_unique<TestEnv>(std::vector<BackendSpec>{b}));
    }

    // Parent: initialised, logged in, an EC and an RSA key pair on the token.
    void parent_ready()
    {
        ASSERT_RV(CKR_OK, module_->initialize());
        slot_ = slot_by_label(fl(), kDefaultToken.label);
        session_ = open_session(fl(), slot_);
        login(fl(), session_, CKU_USER, kDefaultToken.user_pin);
        ec_ = generate_key_pair(fl(), session_, KeyKind::EcP256, "fork-ec");
        rsa_ = generate_key_pair(fl(), session_, KeyKind::Rsa2048, "fork-rsa");
        for (const KeyPair* k : {&ec_, &rsa_}) {
            auto sig = sign(fl(), session_, *k, kData);
            ASSERT_TRUE(verify(public_key(fl(), session_, *k).get(), k->kind, kData, sig));
        }
    }

    // Child: its own C_Initialize, same slot ID, login, sign, verify, finalise.
    void child_works(ChildReport& rep)
    {
        if (!rep.expect_rv(CKR_OK, fl()->C_Initialize(nullptr), "child C_Initialize"))
            return;
        CK_SLOT_ID slot = slot_by_label(fl(), kDefaultToken.label);
        rep.expect(slot == slot_, "slot ID in the child equals the parent's");
        CK_SESSION_HANDLE s = open_session(fl(), slot);
        // The child is a separate application: it is not logged in yet, even
        // though the parent was when it forked.
        CK_SESSION_INFO info{};
        rep.expect_rv(CKR_OK, fl()->C_GetSessionInfo(s, &info), "child C_GetSessionInfo");
        rep.expect(info.state == CKS_RW_PUBLIC_SESSION,
                   "new child session is a public session (state " + std::to_string(info.state) +
                       ", CKS_RW_PUBLIC_SESSION = 2): the parent's login must not carry over");
        CK_OBJECT_CLASS priv = CKO_PRIVATE_KEY;
        rep.expect(find_objects(fl(), s, {{CKA_CLASS, &priv, sizeof priv}}).empty(),
                   "private keys are invisible in the child before it logs in");
        std::string pin = kDefaultToken.user_pin;
        rep.expect_rv(CKR_OK,
                      fl()->C_Login(s, CKU_USER, reinterpret_cast<CK_UTF8CHAR*>(pin.data()),
                                    pin.size()),
                      "child C_Login");
        for (KeyKind kind : {KeyKind::EcP256, KeyKind::Rsa2048}) {
            const char* label = kind == KeyKind::EcP256 ? "fork-ec" : "fork-rsa";
            KeyPair k = find_key_pair(fl(), s, kind, label);
            auto sig = sign(fl(), s, k, kData);
            rep.expect(verify(public_key(fl(), s, k).get(), kind, kData, sig),
                       std::string("child signature verifies (") + to_string(kind) + ")");
        }
        rep.expect_rv(CKR_OK, fl()->C_CloseSession(s), "child C_CloseSession");
        rep.expect_rv(CKR_OK, fl()->C_Finalize(nullptr), "child C_Finalize");
    }

    void parent_still_works()
    {
        for (const KeyPair* k : {&ec_, &rsa_}) {
            SCOPED_TRACE(to_string(k->kind));
            auto sig = sign(fl(), session_, *k, kData);
            EXPECT_TRUE(verify(public_key(fl(), session_, *k).get(), k->kind, kData, sig));
        }
        CK_SESSION_INFO info{};
        EXPECT_RV(CKR_OK, fl()->C_GetSessionInfo(session_, &info));
        EXPECT_EQ(info.state, CKS_RW_USER_FUNCTIONS) << "parent still logged in";
    }

    const TokenSpec kDefaultToken{};
    CK_SLOT_ID slot_ = 0;
    CK_SESSION_HANDLE session_ = 0;
    KeyPair ec_{KeyKind::EcP256}, rsa_{KeyKind::Rsa2048};
};

// In the child, the parent's session and object handles (and everything
// else) give CKR_CRYPTOKI_NOT_INITIALIZED until the child calls C_Initialize;
// then the child works on its own and the parent is unaffected.
TEST_P(Fork, ParentHandlesInChildAreNotInitialized)
{
    ASSERT_NO_FATAL_FAILURE(parent_ready());
    // Leave an operation active in the parent at fork time, too.
    CK_SESSION_HANDLE busy = open_session(fl(), slot_);
    CK_MECHANISM mech{CKM_SHA256_RSA_PKCS, nullptr, 0};
    ASSERT_RV(CKR_OK, fl()->C_SignInit(busy, &mech, rsa_.priv));

    auto r = run_in_child(
        [&](ChildReport& rep) {
            const CK_RV NI = CKR_CRYPTOKI_NOT_INITIALIZED;
            CK_SESSION_INFO info;
            rep.expect_rv(NI, fl()->C_GetSessionInfo(session_, &info), "C_GetSessionInfo");
            CK_MECHANISM ecdsa{CKM_ECDSA, nullptr, 0};
            rep.expect_rv(NI, fl()->C_SignInit(session_, &ecdsa, ec_.priv), "C_SignInit");
            uint8_t data[32] = {1}, sig[512];
            CK_ULONG len = sizeof sig;
            rep.expect_rv(NI, fl()->C_Sign(busy, data, sizeof data, sig, &len),
                          "C_Sign on the operation the parent started");
            CK_ATTRIBUTE a{CKA_LABEL, nullptr, 0};
            rep.expect_rv(NI, fl()->C_GetAttributeValue(session_, ec_.pub, &a, 1),
                          "C_GetAttributeValue");
            rep.expect_rv(NI, fl()->C_FindObjectsInit(session_, nullptr, 0), "C_FindObjectsInit");
            rep.expect_rv(NI, fl()->C_Logout(session_), "C_Logout");
            rep.expect_rv(NI, fl()->C_CloseSession(session_), "C_CloseSession");
            rep.expect_rv(NI, fl()->C_CloseAllSessions(slot_), "C_CloseAllSessions");
            CK_ULONG n = 0;
            rep.expect_rv(NI, fl()->C_GetSlotList(CK_TRUE, nullptr, &n), "C_GetSlotList");
            CK_TOKEN_INFO ti;
            rep.expect_rv(NI, fl()->C_GetTokenInfo(slot_, &ti), "C_GetTokenInfo");
            CK_INFO ci;
            rep.expect_rv(NI, fl()->C_GetInfo(&ci), "C_GetInfo");
            CK_SLOT_ID ev;
            rep.expect_rv(NI, fl()->C_WaitForSlotEvent(CKF_DONT_BLOCK, &ev, nullptr),
                          "C_WaitForSlotEvent(CKF_DONT_BLOCK)");
            rep.expect_rv(NI, fl()->C_WaitForSlotEvent(0, &ev, nullptr),
                          "C_WaitForSlotEvent(blocking)");
            child_works(rep);
        },
        kChildTimeout);
    EXPECT_TRUE(r.ok()) << r.describe();

    // The parent's pending operation and sessions are untouched.
    uint8_t sig[512];
    CK_ULONG len = sizeof sig;
    EXPECT_RV(CKR_OK, fl()->C_Sign(busy, const_cast<uint8_t*>(kData.data()), kData.size(), sig,
                                   &len));
    parent_still_works();
}

// The child's first call may be C_Initialize directly; C_Finalize before it
// is CKR_CRYPTOKI_NOT_INITIALIZED (the child is not initialised).
TEST_P(Fork, ChildFinalizeBeforeInitializeIsNotInitialized)
{
    ASSERT_NO_FATAL_FAILURE(parent_ready());
    auto r = run_in_child(
        [&](ChildReport& rep) {
            rep.expect_rv(CKR_CRYPTOKI_NOT_INITIALIZED, fl()->C_Finalize(nullptr),
                          "child C_Finalize before C_Initialize");
            child_works(rep);
        },
        kChildTimeout);
    EXPECT_TRUE(r.ok()) << r.describe();
    parent_still_works();
}

// A child of a process that loaded but never initialised the module.
TEST_P(Fork, ChildOfUninitializedParent)
{
    ASSERT_NO_FATAL_FAILURE(parent_ready());
    ASSERT_RV(CKR_OK, module_->finalize());
    auto r = run_in_child([&](ChildReport& rep) { child_works(rep); }, kChildTimeout);
    EXPECT_TRUE(r.ok()) << r.describe();
    ASSERT_RV(CKR_OK, module_->initialize());
    EXPECT_NO_THROW(slot_by_label(fl(), kDefaultToken.label));
}

// Several children one after another, and a grandchild.
TEST_P(Fork, RepeatedForksAndGrandchild)
{
    ASSERT_NO_FATAL_FAILURE(parent_ready());
    for (int i = 0; i < 3; ++i) {
        auto r = run_in_child([&](ChildReport& rep) { child_works(rep); }, kChildTimeout);
        ASSERT_TRUE(r.ok()) << "child " << i << ": " << r.describe();
    }
    auto r = run_in_child(
        [&](ChildReport& rep) {
            // Child: initialise and log in, then fork again while initialised.
            if (!rep.expect_rv(CKR_OK, fl()->C_Initialize(nullptr), "child C_Initialize"))
                return;
            CK_SESSION_HANDLE s = open_session(fl(), slot_by_label(fl(), kDefaultToken.label));
            login(fl(), s, CKU_USER, kDefaultToken.user_pin);
            auto g = run_in_child(
                [&](ChildReport& grep) {
                    CK_SESSION_INFO info;
                    grep.expect_rv(CKR_CRYPTOKI_NOT_INITIALIZED, fl()->C_GetSessionInfo(s, &info),
                                   "grandchild C_GetSessionInfo(child's session)");
                    child_works(grep);
                },
                kChildTimeout);
            if (!g.ok())
                rep.fail("grandchild: " + g.describe());
            rep.expect_rv(CKR_OK, fl()->C_Finalize(nullptr), "child C_Finalize");
        },
        2 * kChildTimeout);
    EXPECT_TRUE(r.ok()) << r.describe();
    parent_still_works();
}

// fork() while other parent threads are inside the module (signing): the
// child must not inherit a held lock and deadlock in C_Initialize/C_Sign.
TEST_P(Fork, ForkWhileOtherThreadsAreInsideTheModule)
{
    ASSERT_NO_FATAL_FAILURE(parent_ready());
    std::atomic<bool> stop{false};
    std::atomic<int> errors{0}, signatures{0}, ready{0};
    std::vector<std::thread> threads;
    // The signing threads make PKCS#11 calls only. sign() would hash EC input
    // with OpenSSL in the thread itself, outside the module: a fork at that
    // moment copies OpenSSL's locks held by a thread the child does not have,
    // and the child's SoftHSM2 (which uses OpenSSL) can hang on them. That is
    // the application's own fork hazard, not the module's, so the digest is
    // made once, before any thread starts.
    const std::vector<uint8_t> digest = sha256_of(kData);
    for (int t = 0; t < 4; ++t)
        threads.emplace_back([&, t] {
            try {
                CK_SESSION_HANDLE s = open_session(fl(), slot_);
                const KeyPair& k = t % 2 ? rsa_ : ec_;
                const std::vector<uint8_t>& input = k.kind == KeyKind::EcP256 ? digest : kData;
                CK_MECHANISM mech{sign_mechanism(k.kind), nullptr, 0};
                std::vector<uint8_t> sig(512);
                ++ready;
                while (!stop) {
                    CK_ULONG len = sig.size();
                    if (fl()->C_SignInit(s, &mech, k.priv) != CKR_OK ||
                        fl()->C_Sign(s, const_cast<uint8_t*>(input.data()), input.size(), sig.data(), &len) !=
                            CKR_OK)
                        throw std::runtime_error("signing failed");
                    ++signatures;
                }
                fl()->C_CloseSession(s);
            } catch (const std::exception&) {
                ++errors;
            }
        });
    // No fork until every thread has made its allocations (session, buffer)
    // and only makes PKCS#11 calls: a thread of the application inside
    // malloc at fork() is the application's hazard, as above. glibc's malloc
    // survives it, GCC 12's ASan allocator does not (it has no fork
    // handler): the child then hung in malloc on the size-class lock the
    // starting thread held — the old intermittent failure, always "fork 0".
    while (ready + errors < 4)
        std::this_thread::sleep_for(1ms);
    std::vector<ChildResult> results;
    for (int i = 0; i < 8; ++i) {
        while (signatures < 5 * (i + 1))
            std::this_thread::sleep_for(1ms);
        results.push_back(run_in_child([&](ChildReport& rep) { child_works(rep); }, 15s));
        if (!results.back().ok())
            break;  // one hung/crashed child is enough; do not wait for more timeouts
    }
    stop = true;
    for (auto& t : threads)
        t.join();
    for (size_t i = 0; i < results.size(); ++i)
        EXPECT_TRUE(results[i].ok()) << "fork " << i << ": " << results[i].describe();
    EXPECT_EQ(errors, 0) << "parent signing threads failed";
    parent_still_works();
}

INSTANTIATE_TEST_SUITE_P(SoftHsm, Fork,
                         testing::Values(ForkParam{"default", ""},
                                         ForkParam{"reset_on_fork",
                                                   "library.reset_on_fork = true"}),
                         [](const testing::TestParamInfo<ForkParam>& i) {
                             return std::string(i.param.name);
                         });

}  // namespace
