// The test backends behave as documented in README.md: the PIN suites that
// rely on them (tests/pin) prove nothing if the fake card miscounts or the
// spy misses a login.
#include "fakecard.h"
#include "spy.h"

#include "ukeytest/env.h"
#include "ukeytest/module.h"
#include "ukeytest/process.h"
#include "ukeytest/rv.h"

#include <gtest/gtest.h>

#include <dlfcn.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

using namespace ukeytest;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

std::string slurp(const fs::path& p)
{
    std::ifstream in(p, std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// user_left / so_left in the fake card's state file; -1 if absent.
int card_field(const fs::path& state, const std::string& field)
{
    // (no std::regex: GCC 12 warns inside it under -fsanitize, and -Werror)
    const std::string text = slurp(state);
    const size_t at = text.find(" " + field + "=");
    if (at == std::string::npos)
        return -1;
    return std::atoi(text.c_str() + at + field.size() + 2);
}

CK_RV login(CK_FUNCTION_LIST* fl, CK_SESSION_HANDLE s, CK_USER_TYPE who, const std::string& pin)
{
    std::string p = pin;
    return fl->C_Login(s, who, reinterpret_cast<CK_UTF8CHAR*>(p.data()), p.size());
}

constexpr CK_FLAGS kUserBits = CKF_USER_PIN_COUNT_LOW | CKF_USER_PIN_FINAL_TRY | CKF_USER_PIN_LOCKED;

std::vector<BackendSpec> no_tokens()
{
    BackendSpec b;
    b.name = "unused";
    b.tokens.clear();
    return {b};
}

class FakeCard : public ::testing::Test {
protected:
    // A TestEnv only for its private temp dir (no SoftHSM2 token).
    TestEnv env{no_tokens()};
    fs::path state = env.dir() / "card.state";
    ScopedEnvVar var{FAKECARD_STATE_ENV, state.string()};
};

TEST_F(FakeCard, ExportsOnlyGetFunctionList)
{
    Module m(UKEY_TEST_FAKECARD_PATH);
    EXPECT_NE(nullptr, m.symbol("C_GetFunctionList"));
    EXPECT_EQ(nullptr, m.symbol("C_Login"));
    EXPECT_EQ(nullptr, m.symbol("C_Initialize"));
}

TEST_F(FakeCard, CountsLocksAndUnlocksItself)
{
    Module m(UKEY_TEST_FAKECARD_PATH);
    ASSERT_RV(CKR_OK, m.initialize());
    EXPECT_RV(CKR_CRYPTOKI_ALREADY_INITIALIZED, m.initialize());
    ASSERT_EQ(std::vector<CK_SLOT_ID>{FAKECARD_SLOT_ID}, slot_list(m.fl(), true));
    CK_TOKEN_INFO ti = token_info(m.fl(), FAKECARD_SLOT_ID);
    EXPECT_EQ(FAKECARD_SERIAL, trim_field(ti.serialNumber));
    EXPECT_EQ(FAKECARD_LABEL, trim_field(ti.label));
    EXPECT_EQ(CK_FLAGS(0), ti.flags & kUserBits);
    EXPECT_TRUE(ti.flags & CKF_TOKEN_INITIALIZED);

    CK_ULONG n = 99;
    EXPECT_RV(CKR_OK, m->C_GetMechanismList(FAKECARD_SLOT_ID, nullptr, &n));
    EXPECT_EQ(0UL, n);
    CK_MECHANISM mech{CKM_ECDSA, nullptr, 0};

    CK_SESSION_HANDLE s = open_session(m.fl(), FAKECARD_SLOT_ID, true);
    EXPECT_RV(CKR_FUNCTION_NOT_SUPPORTED, m->C_SignInit(s, &mech, 1));

    const CK_FLAGS expected[] = {CKF_USER_PIN_COUNT_LOW, CKF_USER_PIN_COUNT_LOW | CKF_USER_PIN_FINAL_TRY,
                                 CKF_USER_PIN_COUNT_LOW | CKF_USER_PIN_LOCKED};
    for (unsigned i = 0; i < FAKECARD_MAX_TRIES; ++i) {
        EXPECT_RV(CKR_PIN_INCORRECT, login(m.fl(), s, CKU_USER, "wrong-pin-" + std::to_string(i)));
        EXPECT_EQ(int(FAKECARD_MAX_TRIES - i - 1), card_field(state, "user_left"));
        EXPECT_EQ(expected[i], token_info(m.fl(), FAKECARD_SLOT_ID).flags & kUserBits) << "after try " << i + 1;
    }
    EXPECT_RV(CKR_PIN_LOCKED, login(m.fl(), s, CKU_USER, FAKECARD_DEFAULT_USER_PIN));
    EXPECT_EQ(0, card_field(state, "user_left"));

    // SO unlock.
    EXPECT_RV(CKR_PIN_INCORRECT, login(m.fl(), s, CKU_SO, "wrong-so"));
    EXPECT_EQ(2, card_field(state, "so_left"));
    EXPECT_TRUE(token_info(m.fl(), FAKECARD_SLOT_ID).flags & CKF_SO_PIN_COUNT_LOW);
    ASSERT_RV(CKR_OK, login(m.fl(), s, CKU_SO, FAKECARD_DEFAULT_SO_PIN));
    EXPECT_EQ(3, card_field(state, "so_left"));
    CK_SESSION_INFO si{};
    ASSERT_RV(CKR_OK, m->C_GetSessionInfo(s, &si));
    EXPECT_EQ(CKS_RW_SO_FUNCTIONS, si.state);
    std::string np = "new-user-pin";
    ASSERT_RV(CKR_OK, m->C_InitPIN(s, reinterpret_cast<CK_UTF8CHAR*>(np.data()), np.size()));
    EXPECT_EQ(3, card_field(state, "user_left"));
    EXPECT_EQ(CK_FLAGS(0), token_info(m.fl(), FAKECARD_SLOT_ID).flags & kUserBits);
    ASSERT_RV(CKR_OK, m->C_Logout(s));
    EXPECT_RV(CKR_PIN_INCORRECT, login(m.fl(), s, CKU_USER, FAKECARD_DEFAULT_USER_PIN));
    EXPECT_RV(CKR_OK, login(m.fl(), s, CKU_USER, np));
    EXPECT_EQ(3, card_field(state, "user_left")); // the right PIN restores the count
    ASSERT_RV(CKR_OK, m->C_GetSessionInfo(s, &si));
    EXPECT_EQ(CKS_RW_USER_FUNCTIONS, si.state);

    // C_SetPIN checks the old PIN like a login.
    std::string wrong = "nope-nope", next = "next-user-pin";
    EXPECT_RV(CKR_PIN_INCORRECT, m->C_SetPIN(s, reinterpret_cast<CK_UTF8CHAR*>(wrong.data()), wrong.size(),
                                             reinterpret_cast<CK_UTF8CHAR*>(next.data()), next.size()));
    EXPECT_EQ(2, card_field(state, "user_left"));
    EXPECT_RV(CKR_OK, m->C_SetPIN(s, reinterpret_cast<CK_UTF8CHAR*>(np.data()), np.size(),
                                  reinterpret_cast<CK_UTF8CHAR*>(next.data()), next.size()));
    EXPECT_EQ(3, card_field(state, "user_left"));
    EXPECT_RV(CKR_OK, m.finalize());
}

TEST_F(FakeCard, ProcessesShareOneCounter)
{
    for (int i = 0; i < 2; ++i) {
        auto r = run_in_child(
            [](ChildReport& rep) {
                Module m(UKEY_TEST_FAKECARD_PATH);
                rep.expect_rv(CKR_OK, m.initialize(), "C_Initialize");
                CK_SESSION_HANDLE s = open_session(m.fl(), FAKECARD_SLOT_ID, true);
                rep.expect_rv(CKR_PIN_INCORRECT, login(m.fl(), s, CKU_USER, "wrong-in-child"), "C_Login");
            },
            20s);
        ASSERT_TRUE(r.ok()) << r.describe();
    }
    EXPECT_EQ(1, card_field(state, "user_left"));
    Module m(UKEY_TEST_FAKECARD_PATH);
    ASSERT_RV(CKR_OK, m.initialize());
    EXPECT_EQ(CKF_USER_PIN_COUNT_LOW | CKF_USER_PIN_FINAL_TRY, token_info(m.fl(), FAKECARD_SLOT_ID).flags & kUserBits);
}

TEST(Spy, LogsEveryLoginBeforeAndAfterForwarding)
{
    TestEnv env;
    const fs::path log = env.dir() / "spy.log";
    ScopedEnvVar mod(SPY_MODULE_ENV, std::string(softhsm2_module_path()));
    ScopedEnvVar logv(SPY_LOG_ENV, log.string());

    Module m(UKEY_TEST_SPY_PATH);
    EXPECT_NE(nullptr, m.symbol("C_GetFunctionList"));
    EXPECT_EQ(nullptr, m.symbol("C_Login"));
    ASSERT_RV(CKR_OK, m.initialize());
    CK_SLOT_ID slot = slot_by_label(m.fl(), "ukey-test"); // forwarded calls work
    CK_SESSION_HANDLE s = open_session(m.fl(), slot, true);
    EXPECT_FALSE(fs::exists(log));
    EXPECT_RV(CKR_PIN_INCORRECT, login(m.fl(), s, CKU_USER, "wrong-pin"));
    EXPECT_EQ("login 1\nrv a0\n", slurp(log));
    EXPECT_RV(CKR_OK, login(m.fl(), s, CKU_USER, env.token("ukey-test").spec.user_pin));
    EXPECT_EQ("login 1\nrv a0\nlogin 1\nrv 0\n", slurp(log));
    EXPECT_RV(CKR_OK, m->C_Logout(s));
    EXPECT_RV(CKR_OK, login(m.fl(), s, CKU_SO, env.token("ukey-test").spec.so_pin));
    EXPECT_EQ("login 1\nrv a0\nlogin 1\nrv 0\nlogin 0\nrv 0\n", slurp(log));
    EXPECT_RV(CKR_OK, m.finalize());
}

TEST(Spy, ExitInLoginDiesAfterTheLoginLine)
{
    TestEnv env;
    const fs::path log = env.dir() / "spy.log";
    ScopedEnvVar mod(SPY_MODULE_ENV, std::string(softhsm2_module_path()));
    ScopedEnvVar logv(SPY_LOG_ENV, log.string());
    auto r = run_in_child(
        [](ChildReport& rep) {
            setenv(SPY_EXIT_IN_LOGIN_ENV, "1", 1);
            Module m(UKEY_TEST_SPY_PATH);
            rep.expect_rv(CKR_OK, m.initialize(), "C_Initialize");
            CK_SESSION_HANDLE s = open_session(m.fl(), slot_by_label(m.fl(), "ukey-test"), true);
            login(m.fl(), s, CKU_USER, "whatever");
            rep.fail("C_Login returned");
        },
        20s);
    EXPECT_EQ(ChildResult::Status::Exited, r.status) << r.describe();
    EXPECT_EQ(SPY_EXIT_IN_LOGIN_CODE, r.code) << r.describe();
    EXPECT_EQ("login 1\n", slurp(log));
}

} // namespace
