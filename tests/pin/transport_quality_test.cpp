// Transport (default) PINs and PIN quality, through libukey-pkcs11.so on a
// SoftHSM2 Key:
//   - C_UkeyInitTransportPIN (SO) sets a PIN without quality checks and marks
//     it must-change; C_Login with it is CKR_OK but everything that needs a
//     login is CKR_PIN_EXPIRED until C_SetPIN(transport, new), which then
//     completes the login;
//   - a new PIN outside the length limits is CKR_PIN_LEN_RANGE, a trivial one
//     (one character, straight runs, the old PIN) CKR_PIN_INVALID, for
//     C_InitPIN, C_SetPIN and C_InitToken of an uninitialised token, with
//     [pin] min_length and reject_trivial honoured. Rejections change nothing
//     and cost no try.
#include "pin_common.h"

#include <atomic>
#include <thread>

using namespace pintest;
using namespace ukeytest;

namespace {

const std::string kGood = "good-pin-4826";

CK_RV set_transport(SpyKey& k, const std::string& pin)
{
    CK_SESSION_HANDLE so = k.open();
    check(try_login(k.fl(), so, CKU_SO, SpyKey::kSo), "C_Login(SO)");
    std::string p = pin;
    const CK_RV rv = k.v()->C_UkeyInitTransportPIN(so, reinterpret_cast<CK_UTF8CHAR_PTR>(p.data()), p.size());
    check(k.fl()->C_Logout(so), "C_Logout");
    check(k.fl()->C_CloseSession(so), "C_CloseSession");
    return rv;
}

CK_RV create_private_data(CK_FUNCTION_LIST* fl, CK_SESSION_HANDLE s)
{
    CK_OBJECT_CLASS cls = CKO_DATA;
    CK_BBOOL yes = CK_TRUE;
    char label[] = "secret-note";
    CK_BYTE value[] = {1, 2, 3};
    CK_ATTRIBUTE t[] = {{CKA_CLASS, &cls, sizeof cls},
                        {CKA_TOKEN, &yes, sizeof yes},
                        {CKA_PRIVATE, &yes, sizeof yes},
                        {CKA_LABEL, label, sizeof label - 1},
                        {CKA_VALUE, value, sizeof value}};
    CK_OBJECT_HANDLE h = 0;
    return fl->C_CreateObject(s, t, 5, &h);
}

CK_RV generate_private_ec(CK_FUNCTION_LIST* fl, CK_SESSION_HANDLE s)
{
    static CK_BYTE p256[] = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};
    CK_BBOOL yes = CK_TRUE;
    CK_ATTRIBUTE pub[] = {{CKA_EC_PARAMS, p256, sizeof p256}, {CKA_TOKEN, &yes, sizeof yes}};
    CK_ATTRIBUTE priv[] = {{CKA_TOKEN, &yes, sizeof yes}, {CKA_PRIVATE, &yes, sizeof yes}, {CKA_SIGN, &yes, sizeof yes}};
    CK_MECHANISM gen{CKM_EC_KEY_PAIR_GEN, nullptr, 0};
    CK_OBJECT_HANDLE a = 0, b = 0;
    return fl->C_GenerateKeyPair(s, &gen, pub, 2, priv, 3, &a, &b);
}

size_t count_private_keys(CK_FUNCTION_LIST* fl, CK_SESSION_HANDLE s)
{
    CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
    return find_objects(fl, s, {{CKA_CLASS, &cls, sizeof cls}}).size();
}

bool signs_and_verifies(CK_FUNCTION_LIST* fl, CK_SESSION_HANDLE s, const std::string& label)
{
    KeyPair kp = find_key_pair(fl, s, KeyKind::EcP256, label);
    const std::vector<uint8_t> data = {'u', 'k', 'e', 'y'};
    EvpPkey pub = public_key(fl, s, kp);
    return verify(pub.get(), KeyKind::EcP256, data, sign(fl, s, kp, data));
}

TEST(Transport, LoginWorksButNothingElseUntilThePinIsChanged)
{
    SpyKey k;
    k.start();
    CK_SESSION_HANDLE s = k.open();
    ASSERT_RV(CKR_OK, try_login(k.fl(), s, CKU_USER, SpyKey::kUser));
    const KeyPair kp = generate_key_pair(k.fl(), s, KeyKind::EcP256, "transport-key");
    ASSERT_RV(CKR_OK, k.fl()->C_Logout(s));

    // The issuer's default PIN: trivial, accepted; only the token's length applies.
    ASSERT_RV(CKR_OK, set_transport(k, kTransport));
    EXPECT_RV(CKR_PIN_LEN_RANGE, set_transport(k, "12"));
    EXPECT_FLAGS(CKF_USER_PIN_TO_BE_CHANGED, k.flags());
    UKEY_PIN_STATUS st = k.status();
    EXPECT_EQ(UKEY_PIN_COUNTED_BY_UKEY | UKEY_PIN_USER_MUST_CHANGE, st.flags) << describe(st);
    EXPECT_EQ(6UL, st.userTriesLeft);
    EXPECT_NE(std::string::npos, read_file(pin_file(k.env())).find("change=1")); // durable

    // The old PIN is gone; the transport PIN logs in.
    EXPECT_RV(CKR_PIN_INCORRECT, try_login(k.fl(), s, CKU_USER, SpyKey::kUser));
    EXPECT_EQ(5UL, k.status().userTriesLeft);
    ASSERT_RV(CKR_OK, try_login(k.fl(), s, CKU_USER, kTransport));
    EXPECT_EQ(6UL, k.status().userTriesLeft);
    EXPECT_EQ(CKS_RW_USER_FUNCTIONS, session_state(k.fl(), s));
    EXPECT_RV(CKR_USER_ALREADY_LOGGED_IN, try_login(k.fl(), s, CKU_USER, kTransport));

    // ... but whatever needs the login is refused with CKR_PIN_EXPIRED.
    // A private key handle from before: SoftHSM2 drops private object handles
    // at C_Logout (the one before the SO logged in), so besides
    // CKR_PIN_EXPIRED it may say the handle is gone; it must not sign.
    CK_MECHANISM ecdsa{CKM_ECDSA, nullptr, 0};
    EXPECT_RV_IN(k.fl()->C_SignInit(s, &ecdsa, kp.priv), CKR_PIN_EXPIRED, CKR_KEY_HANDLE_INVALID);
    EXPECT_RV(CKR_PIN_EXPIRED, generate_private_ec(k.fl(), s));
    EXPECT_RV(CKR_PIN_EXPIRED, create_private_data(k.fl(), s));
    EXPECT_EQ(0U, count_private_keys(k.fl(), s)); // private objects stay hidden (not an error)
    CK_SESSION_HANDLE s2 = k.open();               // the login holds for every session
    EXPECT_EQ(CKS_RW_USER_FUNCTIONS, session_state(k.fl(), s2));
    EXPECT_RV(CKR_PIN_EXPIRED, create_private_data(k.fl(), s2));

    // C_SetPIN: quality applies to the new PIN; a wrong old PIN costs a try.
    EXPECT_RV(CKR_PIN_INVALID, set_pin(k.fl(), s, kTransport, "111111"));
    EXPECT_RV(CKR_PIN_INVALID, set_pin(k.fl(), s, kTransport, kTransport));
    EXPECT_RV(CKR_PIN_INCORRECT, set_pin(k.fl(), s, "wrong-old", kGood));
    EXPECT_EQ(5UL, k.status().userTriesLeft);
    EXPECT_FLAGS(CKF_USER_PIN_TO_BE_CHANGED | CKF_USER_PIN_COUNT_LOW, k.flags());

    ASSERT_RV(CKR_OK, set_pin(k.fl(), s, kTransport, kGood));
    EXPECT_FLAGS(0, k.flags());
    st = k.status();
    EXPECT_EQ(UKEY_PIN_COUNTED_BY_UKEY, st.flags) << describe(st);
    EXPECT_EQ(6UL, st.userTriesLeft);
    EXPECT_NE(std::string::npos, read_file(pin_file(k.env())).find("change=0"));

    // The held-back login took effect: the same sessions now work.
    EXPECT_EQ(CKS_RW_USER_FUNCTIONS, session_state(k.fl(), s));
    EXPECT_EQ(1U, count_private_keys(k.fl(), s));
    EXPECT_TRUE(signs_and_verifies(k.fl(), s, "transport-key"));
    EXPECT_RV(CKR_OK, create_private_data(k.fl(), s2));

    // And the new PIN is the PIN.
    ASSERT_RV(CKR_OK, k.fl()->C_Logout(s));
    EXPECT_EQ(CKS_RW_PUBLIC_SESSION, session_state(k.fl(), s2));
    EXPECT_RV(CKR_PIN_INCORRECT, try_login(k.fl(), s, CKU_USER, kTransport));
    ASSERT_RV(CKR_OK, try_login(k.fl(), s, CKU_USER, kGood));
    EXPECT_TRUE(signs_and_verifies(k.fl(), s, "transport-key"));
}

// A login is the whole application's: one undone at once would still let
// its other sessions (threads) work as the user meanwhile. A PIN that must
// be changed is checked without logging the token in at all.
TEST(Transport, HeldBackLoginNeverLogsTheTokenIn)
{
    SpyKey k;
    k.start();
    ASSERT_RV(CKR_OK, set_transport(k, kTransport));
    const int before = k.user_logins();
    CK_SESSION_HANDLE s = k.open(), other = k.open();
    EXPECT_RV(CKR_PIN_INCORRECT, try_login(k.fl(), s, CKU_USER, "wrong-pin-4821"));
    EXPECT_EQ(5UL, k.status().userTriesLeft);
    ASSERT_RV(CKR_OK, try_login(k.fl(), s, CKU_USER, kTransport));
    EXPECT_EQ(6UL, k.status().userTriesLeft);
    EXPECT_EQ(before, k.user_logins()) << "the token was logged in with a PIN that must be changed";
    EXPECT_RV(CKR_PIN_EXPIRED, create_private_data(k.fl(), other));
    ASSERT_RV(CKR_OK, k.fl()->C_Logout(s));

    // One thread logs in and out with the transport PIN, another tries to
    // use the login meanwhile (before the fix: thousands of times a second).
    std::atomic<bool> stop{false};
    std::atomic<int> used{0};
    std::thread user([&] {
        while (!stop)
            if (create_private_data(k.fl(), other) == CKR_OK)
                ++used;
    });
    for (int i = 0; i < 200; ++i) {
        const CK_RV in = try_login(k.fl(), s, CKU_USER, kTransport), out = k.fl()->C_Logout(s);
        if (in != CKR_OK || out != CKR_OK) {
            ADD_FAILURE() << "round " << i << ": C_Login " << rv_name(in) << ", C_Logout " << rv_name(out);
            break;
        }
    }
    stop = true;
    user.join();
    EXPECT_EQ(0, used.load()) << "another session worked as the user on the transport PIN";
    EXPECT_EQ(before, k.user_logins());

    // Changing the PIN completes the held-back login, with the new PIN.
    ASSERT_RV(CKR_OK, try_login(k.fl(), s, CKU_USER, kTransport));
    ASSERT_RV(CKR_OK, set_pin(k.fl(), s, kTransport, kGood));
    EXPECT_EQ(before + 1, k.user_logins());
    EXPECT_RV(CKR_OK, create_private_data(k.fl(), other));
}

TEST(Transport, LogoutAndClosingTheLastSessionEndTheHeldBackLogin)
{
    SpyKey k;
    k.start();
    ASSERT_RV(CKR_OK, set_transport(k, kTransport));
    CK_SESSION_HANDLE s = k.open();
    ASSERT_RV(CKR_OK, try_login(k.fl(), s, CKU_USER, kTransport));
    EXPECT_EQ(CKS_RW_USER_FUNCTIONS, session_state(k.fl(), s));
    EXPECT_RV(CKR_OK, k.fl()->C_Logout(s));
    EXPECT_EQ(CKS_RW_PUBLIC_SESSION, session_state(k.fl(), s));
    EXPECT_RV(CKR_USER_NOT_LOGGED_IN, create_private_data(k.fl(), s)); // not "expired" any more

    ASSERT_RV(CKR_OK, try_login(k.fl(), s, CKU_USER, kTransport));
    ASSERT_RV(CKR_OK, k.fl()->C_CloseSession(s));
    s = k.open();
    EXPECT_EQ(CKS_RW_PUBLIC_SESSION, session_state(k.fl(), s));
    EXPECT_RV(CKR_OK, try_login(k.fl(), s, CKU_USER, kTransport)); // not "already logged in"
    EXPECT_RV(CKR_PIN_EXPIRED, create_private_data(k.fl(), s));
    EXPECT_FLAGS(CKF_USER_PIN_TO_BE_CHANGED, k.flags()); // still to be changed
}

TEST(Transport, SurvivesRestartsUntilChanged)
{
    SpyKey k;
    k.start();
    ASSERT_RV(CKR_OK, set_transport(k, kTransport));
    k.stop();
    k.start();
    EXPECT_FLAGS(CKF_USER_PIN_TO_BE_CHANGED, k.flags());
    CK_SESSION_HANDLE s = k.open();
    ASSERT_RV(CKR_OK, try_login(k.fl(), s, CKU_USER, kTransport));
    EXPECT_RV(CKR_PIN_EXPIRED, create_private_data(k.fl(), s));
    ASSERT_RV(CKR_OK, set_pin(k.fl(), s, kTransport, kGood));
    k.stop();
    k.start();
    EXPECT_FLAGS(0, k.flags());
    s = k.open();
    ASSERT_RV(CKR_OK, try_login(k.fl(), s, CKU_USER, kGood));
    EXPECT_RV(CKR_OK, create_private_data(k.fl(), s));
}

TEST(Transport, SoInitPinClearsIt)
{
    SpyKey k;
    k.start();
    ASSERT_RV(CKR_OK, set_transport(k, kTransport));
    k.unlock(); // C_InitPIN(kUser)
    EXPECT_FLAGS(0, k.flags());
    EXPECT_EQ(UKEY_PIN_COUNTED_BY_UKEY, k.status().flags);
    CK_SESSION_HANDLE s = k.open();
    ASSERT_RV(CKR_OK, try_login(k.fl(), s, CKU_USER, SpyKey::kUser));
    EXPECT_RV(CKR_OK, create_private_data(k.fl(), s));
}

TEST(Transport, NeedsAnSoSession)
{
    SpyKey k;
    k.start();
    CK_SESSION_HANDLE s = k.open();
    std::string p = kTransport;
    auto transport = [&] {
        return k.v()->C_UkeyInitTransportPIN(s, reinterpret_cast<CK_UTF8CHAR_PTR>(p.data()), p.size());
    };
    EXPECT_RV(CKR_USER_NOT_LOGGED_IN, transport()); // public session
    ASSERT_RV(CKR_OK, try_login(k.fl(), s, CKU_USER, SpyKey::kUser));
    EXPECT_RV(CKR_USER_NOT_LOGGED_IN, transport()); // user session
    EXPECT_RV(CKR_ARGUMENTS_BAD, k.v()->C_UkeyInitTransportPIN(s, nullptr, 6));
    EXPECT_FLAGS(0, k.flags());
    EXPECT_EQ(UKEY_PIN_COUNTED_BY_UKEY, k.status().flags);
    ASSERT_RV(CKR_OK, k.fl()->C_Logout(s));
    EXPECT_RV(CKR_OK, try_login(k.fl(), s, CKU_USER, SpyKey::kUser)); // unchanged
}

// ---- PIN quality ----------------------------------------------------------------

struct Case {
    std::string pin;
    CK_RV rv;
};

// SoftHSM2: ulMinPinLen 4, ulMaxPinLen 255.
std::vector<Case> bad_new_pins()
{
    std::string too_long;
    for (int i = 0; i < 256; ++i)
        too_long += static_cast<char>('a' + (i * 7) % 26);
    return {
        {"12a", CKR_PIN_LEN_RANGE},    {"", CKR_PIN_LEN_RANGE},       {too_long, CKR_PIN_LEN_RANGE},
        {"111111", CKR_PIN_INVALID},   {"aaaaaaaa", CKR_PIN_INVALID}, {"123456", CKR_PIN_INVALID},
        {"654321", CKR_PIN_INVALID},   {"abcdef", CKR_PIN_INVALID},   {"4321", CKR_PIN_INVALID},
        {"0123456789", CKR_PIN_INVALID},
    };
}

TEST(Quality, InitPinRejectsBadPins)
{
    SpyKey k;
    k.start();
    CK_SESSION_HANDLE s = k.open();
    ASSERT_RV(CKR_OK, try_login(k.fl(), s, CKU_SO, SpyKey::kSo));
    for (const auto& c : bad_new_pins())
        EXPECT_RV(c.rv, init_pin(k.fl(), s, c.pin)) << "'" << c.pin << "'";
    EXPECT_RV(CKR_OK, init_pin(k.fl(), s, kGood));
    ASSERT_RV(CKR_OK, k.fl()->C_Logout(s));
    EXPECT_RV(CKR_OK, try_login(k.fl(), s, CKU_USER, kGood));
    EXPECT_EQ("user 6/6, so 6/6, flags 0x1", describe(k.status()));
}

TEST(Quality, SetPinRejectsBadPinsAndTheOldOne)
{
    SpyKey k;
    k.start();
    CK_SESSION_HANDLE s = k.open();
    ASSERT_RV(CKR_OK, try_login(k.fl(), s, CKU_USER, SpyKey::kUser));
    for (const auto& c : bad_new_pins()) {
        EXPECT_RV(c.rv, set_pin(k.fl(), s, SpyKey::kUser, c.pin)) << "'" << c.pin << "'";
        // Rejected before the token: even with a wrong old PIN no try is spent.
        EXPECT_RV(c.rv, set_pin(k.fl(), s, "wrong-old", c.pin)) << "'" << c.pin << "'";
    }
    EXPECT_RV(CKR_PIN_INVALID, set_pin(k.fl(), s, SpyKey::kUser, SpyKey::kUser)); // new == old
    EXPECT_EQ("user 6/6, so 6/6, flags 0x1", describe(k.status()));
    ASSERT_RV(CKR_OK, k.fl()->C_Logout(s));
    EXPECT_RV(CKR_OK, try_login(k.fl(), s, CKU_USER, SpyKey::kUser)); // the PIN never changed
    EXPECT_RV(CKR_OK, set_pin(k.fl(), s, SpyKey::kUser, kGood));
    ASSERT_RV(CKR_OK, k.fl()->C_Logout(s));
    EXPECT_RV(CKR_OK, try_login(k.fl(), s, CKU_USER, kGood));
    ASSERT_RV(CKR_OK, k.fl()->C_Logout(s));

    // The SO's own PIN follows the same rules.
    ASSERT_RV(CKR_OK, try_login(k.fl(), s, CKU_SO, SpyKey::kSo));
    EXPECT_RV(CKR_PIN_INVALID, set_pin(k.fl(), s, SpyKey::kSo, "99999999"));
    EXPECT_RV(CKR_PIN_INVALID, set_pin(k.fl(), s, SpyKey::kSo, SpyKey::kSo));
    EXPECT_RV(CKR_PIN_LEN_RANGE, set_pin(k.fl(), s, SpyKey::kSo, "9a"));
    EXPECT_EQ("user 6/6, so 6/6, flags 0x1", describe(k.status()));
}

CK_SLOT_ID blank_slot(CK_FUNCTION_LIST* fl)
{
    for (CK_SLOT_ID slot : slot_list(fl, true))
        if (!(token_info(fl, slot).flags & CKF_TOKEN_INITIALIZED))
            return slot;
    throw std::runtime_error("no uninitialised token");
}

TEST(Quality, InitTokenOfANewTokenRejectsBadSoPins)
{
    SpyKey k;
    k.start();
    const CK_SLOT_ID blank = blank_slot(k.fl());
    for (const auto& c : bad_new_pins())
        EXPECT_RV(c.rv, init_token(k.fl(), blank, c.pin, "fresh")) << "'" << c.pin << "'";
    EXPECT_FALSE(token_info(k.fl(), blank).flags & CKF_TOKEN_INITIALIZED);
    EXPECT_RV(CKR_OK, init_token(k.fl(), blank, "so-pin-9753", "fresh"));
    const CK_SLOT_ID fresh = slot_by_label(k.fl(), "fresh");
    CK_SESSION_HANDLE s = open_session(k.fl(), fresh, true);
    EXPECT_RV(CKR_OK, try_login(k.fl(), s, CKU_SO, "so-pin-9753"));
    EXPECT_EQ("user 6/6, so 6/6, flags 0x1", describe(pin_status(k.v(), fresh)));
}

TEST(Quality, ConfiguredMinimumLength)
{
    SpyKey k("min_length = 8\n");
    k.start();
    const CK_SLOT_ID blank = blank_slot(k.fl());
    EXPECT_RV(CKR_PIN_LEN_RANGE, init_token(k.fl(), blank, "so-9753", "fresh")); // 7
    CK_SESSION_HANDLE s = k.open();
    ASSERT_RV(CKR_OK, try_login(k.fl(), s, CKU_SO, SpyKey::kSo));
    EXPECT_RV(CKR_PIN_LEN_RANGE, init_pin(k.fl(), s, "ab3de7g")); // 7
    EXPECT_RV(CKR_OK, init_pin(k.fl(), s, "ab3de7g9"));          // 8
    ASSERT_RV(CKR_OK, k.fl()->C_Logout(s));
    ASSERT_RV(CKR_OK, try_login(k.fl(), s, CKU_USER, "ab3de7g9"));
    EXPECT_RV(CKR_PIN_LEN_RANGE, set_pin(k.fl(), s, "ab3de7g9", "zx8cv5b"));
    EXPECT_RV(CKR_OK, set_pin(k.fl(), s, "ab3de7g9", "zx8cv5bn"));
    ASSERT_RV(CKR_OK, k.fl()->C_Logout(s));
    // A transport PIN is the issuer's choice: only the token's limits apply.
    EXPECT_RV(CKR_OK, set_transport(k, "1111"));
}

TEST(Quality, TrivialPinsAllowedWhenConfigured)
{
    SpyKey k("reject_trivial = false\n");
    k.start();
    CK_SESSION_HANDLE s = k.open();
    ASSERT_RV(CKR_OK, try_login(k.fl(), s, CKU_SO, SpyKey::kSo));
    EXPECT_RV(CKR_PIN_LEN_RANGE, init_pin(k.fl(), s, "111")); // length still counts
    EXPECT_RV(CKR_OK, init_pin(k.fl(), s, "111111"));
    ASSERT_RV(CKR_OK, k.fl()->C_Logout(s));
    ASSERT_RV(CKR_OK, try_login(k.fl(), s, CKU_USER, "111111"));
    EXPECT_RV(CKR_OK, set_pin(k.fl(), s, "111111", "123456"));
    EXPECT_RV(CKR_OK, set_pin(k.fl(), s, "123456", "123456"));
    EXPECT_FLAGS(0, k.flags()); // no transport flag: this was the user's own choice
}

} // namespace
