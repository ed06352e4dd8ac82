// The PIN policy a Key carries (docs/pin-policy.md, "The policy on the
// Key"): limits and the transport-PIN mark set by an SO are on the Key, so
// another user (another state folder) enforces them too; applications going
// through ukey neither see the policy object nor can change it; a Key that
// lost it around ukey fails closed for every account that had seen it.
#include "pin_common.h"

#include <fstream>

using namespace pintest;
using namespace ukeytest;

namespace {

const std::string kNew = "new-pin-5173";

// A ukey.conf for "another user" of the same Key: its state in its own folder.
fs::path other_user_conf(SpyKey& k, const std::string& name)
{
    std::string text = conf_text(k.env(), {BackendLine{"softhsm", UKEY_TEST_SPY_PATH, "ukey"}});
    const std::string from = k.env().state_dir().string();
    text.replace(text.find(from), from.size(), (k.env().dir() / ("state-" + name)).string());
    const fs::path p = k.env().dir() / ("ukey-" + name + ".conf");
    overwrite_file(p, text);
    return p;
}

// What `ukey init --tries N --so-tries N [--transport-pin]` does after
// C_InitToken, in an SO session.
void issue(SpyKey& k, CK_ULONG tries, bool transport)
{
    CK_SESSION_HANDLE so = k.open();
    check(try_login(k.fl(), so, CKU_SO, SpyKey::kSo), "C_Login(SO)");
    check(k.v()->C_UkeySetPinLimits(so, tries, tries), "C_UkeySetPinLimits");
    if (transport) {
        std::string p = kTransport;
        check(k.v()->C_UkeyInitTransportPIN(so, reinterpret_cast<CK_UTF8CHAR_PTR>(p.data()), p.size()),
              "C_UkeyInitTransportPIN");
    }
    check(k.fl()->C_Logout(so), "C_Logout");
    check(k.fl()->C_CloseSession(so), "C_CloseSession");
}

// The Key issued with 4 tries and no transport PIN; ukey finalised.
void issued_then_stopped(SpyKey& k)
{
    k.start();
    issue(k, 4, false);
    k.stop();
}

// With ukey finalised, code that goes around it: fn on the Key's policy
// object, straight on SoftHSM2.
void around_ukey(SpyKey& k,
                 const std::function<void(CK_FUNCTION_LIST*, CK_SESSION_HANDLE, CK_OBJECT_HANDLE)>& fn)
{
    k.env().with_softhsm(0, [&](CK_FUNCTION_LIST* fl) {
        CK_SESSION_HANDLE s = open_session(fl, slot_by_label(fl, "ukey-test"), true);
        char app[] = "ukey-policy";
        auto hs = find_objects(fl, s, {{CKA_APPLICATION, app, sizeof app - 1}});
        ASSERT_EQ(1U, hs.size());
        fn(fl, s, hs[0]);
        fl->C_CloseSession(s);
    });
}

// A data object on the token; `extra` attributes go after the usual ones.
CK_RV create_data(CK_FUNCTION_LIST* fl, CK_SESSION_HANDLE s, bool priv, const std::string& application,
                  CK_OBJECT_HANDLE* out = nullptr, const std::vector<CK_ATTRIBUTE>& extra = {})
{
    CK_OBJECT_CLASS cls = CKO_DATA;
    CK_BBOOL yes = CK_TRUE, p = priv ? CK_TRUE : CK_FALSE;
    std::string app = application, label = "note";
    CK_BYTE value[] = {1, 2, 3};
    std::vector<CK_ATTRIBUTE> t = {{CKA_CLASS, &cls, sizeof cls},
                                   {CKA_TOKEN, &yes, sizeof yes},
                                   {CKA_PRIVATE, &p, sizeof p},
                                   {CKA_LABEL, label.data(), label.size()},
                                   {CKA_APPLICATION, app.data(), app.size()},
                                   {CKA_VALUE, value, sizeof value}};
    t.insert(t.end(), extra.begin(), extra.end());
    CK_OBJECT_HANDLE h = 0;
    return fl->C_CreateObject(s, t.data(), t.size(), out ? out : &h);
}

std::string application_of(CK_FUNCTION_LIST* fl, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h)
{
    char buf[64];
    CK_ATTRIBUTE a{CKA_APPLICATION, buf, sizeof buf};
    if (fl->C_GetAttributeValue(s, h, &a, 1) != CKR_OK || a.ulValueLen > sizeof buf)
        return {};
    return std::string(buf, a.ulValueLen);
}

// The token files of SoftHSM2 holding `needle` (the policy object's record).
std::vector<fs::path> token_files_with(const SpyKey& k, const std::string& needle)
{
    std::vector<fs::path> out;
    for (const auto& e : fs::recursive_directory_iterator(const_cast<SpyKey&>(k).env().token_dir(0)))
        if (e.is_regular_file() && read_file(e.path()).find(needle) != std::string::npos)
            out.push_back(e.path());
    return out;
}

TEST(KeyPolicy, TransportPinAndLimitsTravelWithTheKey)
{
    SpyKey k;
    k.start();
    issue(k, 3, true);
    EXPECT_EQ("user 3/3, so 3/3, flags 0x3", describe(k.status()));
    k.stop();

    {
        SCOPED_TRACE("another user: another state folder");
        ScopedEnvVar conf("UKEY_CONF", other_user_conf(k, "b").string());
        k.start();
        EXPECT_EQ("user 3/3, so 3/3, flags 0x3", describe(k.status())); // must change, 3/3
        EXPECT_FLAGS(CKF_USER_PIN_TO_BE_CHANGED, k.flags());
        CK_SESSION_HANDLE s = k.open();
        ASSERT_RV(CKR_OK, try_login(k.fl(), s, CKU_USER, kTransport));
        EXPECT_RV(CKR_PIN_EXPIRED, create_data(k.fl(), s, true, "app"));
        // Only C_SetPIN works; then the held-back login takes effect.
        ASSERT_RV(CKR_OK, set_pin(k.fl(), s, kTransport, kNew));
        EXPECT_RV(CKR_OK, create_data(k.fl(), s, true, "app"));
        EXPECT_EQ("user 3/3, so 3/3, flags 0x1", describe(k.status()));
        ASSERT_RV(CKR_OK, k.fl()->C_Logout(s));
        // The Key's limit: three wrong PINs lock it.
        for (int i = 0; i < 3; ++i)
            EXPECT_RV(CKR_PIN_INCORRECT, try_login(k.fl(), s, CKU_USER, "wrong-" + std::to_string(i)));
        EXPECT_RV(CKR_PIN_LOCKED, try_login(k.fl(), s, CKU_USER, kNew));
        EXPECT_EQ("user 0/3, so 3/3, flags 0x1", describe(k.status()));
        k.stop();
    }

    {
        SCOPED_TRACE("a third user, after the change");
        ScopedEnvVar conf("UKEY_CONF", other_user_conf(k, "c").string());
        k.start();
        EXPECT_EQ("user 3/3, so 3/3, flags 0x1", describe(k.status()));
        CK_SESSION_HANDLE s = k.open();
        EXPECT_RV(CKR_PIN_INCORRECT, try_login(k.fl(), s, CKU_USER, kTransport));
        EXPECT_RV(CKR_OK, try_login(k.fl(), s, CKU_USER, kNew));
        k.stop();
    }

    // The first user: the mark it set was cleared on the Key by the other.
    k.start();
    EXPECT_EQ("user 3/3, so 3/3, flags 0x1", describe(k.status()));
    EXPECT_FLAGS(0, k.flags());
    CK_SESSION_HANDLE s = k.open();
    ASSERT_RV(CKR_OK, try_login(k.fl(), s, CKU_USER, kNew));
    EXPECT_RV(CKR_OK, create_data(k.fl(), s, true, "app"));
}

TEST(KeyPolicy, UnlockByTheSoClearsTheMarkOnTheKey)
{
    SpyKey k;
    k.start();
    issue(k, 5, true);
    EXPECT_EQ("user 5/5, so 5/5, flags 0x3", describe(k.status()));
    k.unlock(); // C_InitPIN by the SO: an ordinary PIN again
    EXPECT_EQ("user 5/5, so 5/5, flags 0x1", describe(k.status()));
    k.stop();
    ScopedEnvVar conf("UKEY_CONF", other_user_conf(k, "b").string());
    k.start();
    EXPECT_EQ("user 5/5, so 5/5, flags 0x1", describe(k.status()));
    CK_SESSION_HANDLE s = k.open();
    ASSERT_RV(CKR_OK, try_login(k.fl(), s, CKU_USER, SpyKey::kUser));
    EXPECT_RV(CKR_OK, create_data(k.fl(), s, true, "app"));
}

TEST(KeyPolicy, HiddenFromApplicationsAndNotTheirsToChange)
{
    SpyKey k;
    k.start();
    issue(k, 4, false);
    CK_SESSION_HANDLE s = k.open();
    ASSERT_RV(CKR_OK, try_login(k.fl(), s, CKU_USER, SpyKey::kUser));

    // Not found, by any search.
    for (CK_OBJECT_HANDLE h : find_objects(k.fl(), s, {}))
        EXPECT_NE("ukey-policy", application_of(k.fl(), s, h));
    CK_OBJECT_CLASS data = CKO_DATA;
    EXPECT_TRUE(find_objects(k.fl(), s, {{CKA_CLASS, &data, sizeof data}}).empty());
    char app[] = "ukey-policy";
    EXPECT_TRUE(find_objects(k.fl(), s, {{CKA_APPLICATION, app, sizeof app - 1}}).empty());

    // Not made by applications.
    EXPECT_RV(CKR_ATTRIBUTE_VALUE_INVALID, create_data(k.fl(), s, false, "ukey-policy"));
    CK_OBJECT_HANDLE mine = 0;
    ASSERT_RV(CKR_OK, create_data(k.fl(), s, false, "mine", &mine));
    // One search returning both: only ours, and the search still ends.
    std::vector<CK_OBJECT_HANDLE> found = find_objects(k.fl(), s, {{CKA_CLASS, &data, sizeof data}});
    ASSERT_EQ(1U, found.size());
    EXPECT_EQ(mine, found[0]);
    CK_ATTRIBUTE rename{CKA_APPLICATION, app, sizeof app - 1};
    EXPECT_RV(CKR_ATTRIBUTE_VALUE_INVALID, k.fl()->C_SetAttributeValue(s, mine, &rename, 1));

    // A hostile application guessing its handle (same tag as ours, backend
    // handles are small numbers) can read it, but not change, copy or
    // destroy it.
    CK_OBJECT_HANDLE policy = CK_INVALID_HANDLE;
    for (CK_OBJECT_HANDLE n = 1; n < 4096 && policy == CK_INVALID_HANDLE; ++n) {
        const CK_OBJECT_HANDLE h = n << 12 | (mine & 0xfff);
        if (application_of(k.fl(), s, h) == "ukey-policy")
            policy = h;
    }
    ASSERT_NE(CK_INVALID_HANDLE, policy) << "the policy object is not on the Key";
    EXPECT_RV(CKR_ACTION_PROHIBITED, k.fl()->C_DestroyObject(s, policy));
    std::string loose = "ukey-policy 1 user_max=15 so_max=15 must_change=0";
    CK_ATTRIBUTE v{CKA_LABEL, loose.data(), loose.size()};
    EXPECT_RV(CKR_ACTION_PROHIBITED, k.fl()->C_SetAttributeValue(s, policy, &v, 1));
    CK_OBJECT_HANDLE copy = 0;
    EXPECT_RV(CKR_ACTION_PROHIBITED, k.fl()->C_CopyObject(s, policy, nullptr, 0, &copy));
    EXPECT_EQ("user 4/4, so 4/4, flags 0x1", describe(k.status()));

    // Variants: a copy of ours renamed, the attribute given twice, a name
    // in another case (an ordinary object, not ukey's), searches naming it
    // next to something else.
    CK_OBJECT_HANDLE other = 0;
    EXPECT_RV(CKR_ATTRIBUTE_VALUE_INVALID, k.fl()->C_CopyObject(s, mine, &rename, 1, &other));
    {
        CK_OBJECT_CLASS cls = CKO_DATA;
        char x[] = "x";
        EXPECT_RV(CKR_ATTRIBUTE_VALUE_INVALID,
                  create_data(k.fl(), s, false, x, &other, {{CKA_APPLICATION, app, sizeof app - 1}}));
        CK_ATTRIBUTE set_twice[] = {{CKA_LABEL, x, 1}, {CKA_APPLICATION, app, sizeof app - 1}};
        EXPECT_RV(CKR_ATTRIBUTE_VALUE_INVALID, k.fl()->C_SetAttributeValue(s, mine, set_twice, 2));
        EXPECT_TRUE(find_objects(k.fl(), s, {{CKA_APPLICATION, x, 1}, {CKA_APPLICATION, app, sizeof app - 1}}).empty());
        EXPECT_TRUE(find_objects(k.fl(), s, {{CKA_CLASS, &cls, sizeof cls}, {CKA_APPLICATION, app, sizeof app - 1},
                                             {CKA_CLASS, &cls, sizeof cls}})
                        .empty());
    }
    CK_OBJECT_HANDLE upper = 0;
    EXPECT_RV(CKR_OK, create_data(k.fl(), s, false, "UKEY-POLICY", &upper));
    EXPECT_EQ("user 4/4, so 4/4, flags 0x1", describe(k.status()));
    EXPECT_RV(CKR_OK, k.fl()->C_DestroyObject(s, upper));

    // Ordinary objects behave as before.
    EXPECT_RV(CKR_OK, k.fl()->C_DestroyObject(s, mine));
    EXPECT_TRUE(find_objects(k.fl(), s, {{CKA_CLASS, &data, sizeof data}}).empty());
}

TEST(KeyPolicy, RemovedAroundUkeyFailsClosed)
{
    SpyKey k;
    issued_then_stopped(k);

    // Code that goes around ukey cannot simply delete it (not destroyable)...
    around_ukey(k, [](CK_FUNCTION_LIST* fl, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE policy) {
        EXPECT_RV(CKR_ACTION_PROHIBITED, fl->C_DestroyObject(s, policy));
    });
    // ... but can remove it from the token's storage.
    auto files = token_files_with(k, "ukey-policy 1 ");
    ASSERT_EQ(1U, files.size());
    fs::remove(files[0]);

    k.start();
    UKEY_PIN_STATUS st = k.status();
    EXPECT_TRUE(st.flags & UKEY_PIN_STATE_DAMAGED) << describe(st);
    EXPECT_FLAGS(CKF_USER_PIN_LOCKED | CKF_SO_PIN_LOCKED, k.flags() & (CKF_USER_PIN_LOCKED | CKF_SO_PIN_LOCKED));
    CK_SESSION_HANDLE s = k.open();
    const int before = k.user_logins();
    StderrCapture cap;
    EXPECT_RV(CKR_PIN_LOCKED, try_login(k.fl(), s, CKU_USER, SpyKey::kUser));
    const std::string err = cap.stop();
    EXPECT_EQ(before, k.user_logins()) << "the PIN reached SoftHSM2";
    EXPECT_NE(std::string::npos, err.find("removed around ukey")) << err;
    k.stop();

    {
        // An account that never saw it cannot tell (docs/pin-policy.md).
        ScopedEnvVar conf("UKEY_CONF", other_user_conf(k, "b").string());
        k.start();
        EXPECT_EQ("user 6/6, so 6/6, flags 0x1", describe(k.status()));
        k.stop();
    }

    // Re-initialising with the SO PIN (counted) repairs it.
    k.start();
    ASSERT_RV(CKR_OK, k.fl()->C_CloseAllSessions(k.slot()));
    EXPECT_RV(CKR_PIN_INCORRECT, init_token(k.fl(), k.slot(), "wrong-so-pin", "repaired"));
    EXPECT_EQ("user 0/0, so 0/0, flags 0x5", describe(k.status())); // still untrusted, and so shown
    ASSERT_RV(CKR_OK, init_token(k.fl(), k.slot(), SpyKey::kSo, "repaired"));
    EXPECT_EQ("user 6/6, so 6/6, flags 0x1", describe(pin_status(k.v(), slot_by_label(k.fl(), "repaired"))));
}

TEST(KeyPolicy, AlteredAroundUkeyFailsClosed)
{
    SpyKey k;
    issued_then_stopped(k);
    around_ukey(k, [](CK_FUNCTION_LIST* fl, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE policy) {
        std::string junk = "ukey-policy 1 user_max=99 so_max=15 must_change=0";
        CK_ATTRIBUTE v{CKA_LABEL, junk.data(), junk.size()};
        EXPECT_RV(CKR_OK, fl->C_SetAttributeValue(s, policy, &v, 1));
    });
    k.start();
    EXPECT_TRUE(k.status().flags & UKEY_PIN_STATE_DAMAGED) << describe(k.status());
    CK_SESSION_HANDLE s = k.open();
    const int before = k.user_logins();
    EXPECT_RV(CKR_PIN_LOCKED, try_login(k.fl(), s, CKU_USER, SpyKey::kUser));
    EXPECT_EQ(before, k.user_logins()) << "the PIN reached SoftHSM2";
}

} // namespace

namespace {

// A token that keeps no objects (the fake card) cannot carry the policy: the
// limits and the mark then hold for this account only, with a warning.
TEST(KeyPolicy, TokenWithoutObjectsKeepsItLocally)
{
    SpyKey k({}, SpyTarget::fakecard);
    k.start();
    CK_SESSION_HANDLE so = k.open();
    ASSERT_RV(CKR_OK, try_login(k.fl(), so, CKU_SO, k.so_pin()));
    StderrCapture cap;
    EXPECT_RV(CKR_OK, k.v()->C_UkeySetPinLimits(so, 3, 4));
    const std::string err = cap.stop();
    EXPECT_NE(std::string::npos, err.find("keeps no objects: its PIN limits hold for this account only")) << err;
    EXPECT_EQ("user 3/3, so 4/4, flags 0x1", describe(k.status()));
}

} // namespace
