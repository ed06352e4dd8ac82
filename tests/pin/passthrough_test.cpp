// pin_counter = "token": ukey-test-fakecard counts its own tries (3), and
// libukey-pkcs11.so must neither count (no state file, ever) nor change the
// card's flags: COUNT_LOW / FINAL_TRY / LOCKED after 1 / 2 / 3 wrong PINs
// come from the card, the card's counter drops by exactly one per wrong
// PIN, and the vendor status only knows what the flags say. PIN quality
// still applies.
#include "pin_common.h"

#include <cstdlib>

using namespace pintest;
using namespace ukeytest;
using namespace std::chrono_literals;

namespace {

std::vector<BackendSpec> softhsm_backends(bool with_token)
{
    BackendSpec b;
    b.name = "softhsm";
    if (!with_token)
        b.tokens.clear();
    return {b};
}

// The fake card behind ukey, alone or next to a SoftHSM2 Key counted by ukey.
class Card {
public:
    explicit Card(bool with_softhsm = false)
        : env_(softhsm_backends(with_softhsm)), state_(env_.dir() / "card.state"),
          var_(FAKECARD_STATE_ENV, state_.string())
    {
        std::vector<BackendLine> lines;
        if (with_softhsm)
            lines.push_back(BackendLine{"softhsm", softhsm2_module_path(), "ukey"});
        lines.push_back(BackendLine{"card", UKEY_TEST_FAKECARD_PATH, "token"});
        // The audit log (docs/audit.md) records the logins wherever the PIN
        // is counted; it lives beside state_dir here, so that state_dir
        // shows exactly what ukey counted: nothing.
        env_.write_ukey_conf(conf_text(env_, lines) + "\n[audit]\npath = \"" + (env_.dir() / "audit").string() + "\"\n");
        module_ = std::make_unique<Module>(module_path());
        vendor_ = vendor(*module_);
    }

    void start()
    {
        check(module_->initialize(), "C_Initialize");
        slot_ = slot_by_label(fl(), FAKECARD_LABEL);
    }
    void stop() { check(module_->finalize(), "C_Finalize"); }

    TestEnv& env() { return env_; }
    Module& module() { return *module_; }
    CK_FUNCTION_LIST* fl() const { return module_->fl(); }
    UKEY_FUNCTION_LIST* v() const { return vendor_; }
    CK_SLOT_ID slot() const { return slot_; }
    CK_FLAGS flags() const { return pin_flags(fl(), slot_); }
    std::string status() const { return describe(pin_status(vendor_, slot_)); }
    CK_SESSION_HANDLE open() const { return open_session(fl(), slot_, true); }

    // The card's own counter, from its state file.
    int card(const std::string& field) const
    {
        const std::string text = fs::exists(state_) ? read_file(state_) : "";
        const size_t at = text.find(" " + field + "=");
        if (at == std::string::npos)
            return -1;
        return std::atoi(text.c_str() + at + field.size() + 2);
    }
    void set_card(unsigned user_left, unsigned so_left) const
    {
        overwrite_file(state_, "fakecard 1 user_left=" + std::to_string(user_left) + " so_left=" +
                               std::to_string(so_left) + " user_pin=" FAKECARD_DEFAULT_USER_PIN
                               " so_pin=" FAKECARD_DEFAULT_SO_PIN "\n");
    }

    // Nothing at all in state_dir: ukey never wrote a PIN record.
    std::vector<fs::path> state_entries() const
    {
        std::vector<fs::path> out;
        if (fs::exists(env_.state_dir()))
            for (const auto& e : fs::recursive_directory_iterator(env_.state_dir()))
                out.push_back(e.path());
        return out;
    }

private:
    TestEnv env_;
    fs::path state_;
    ScopedEnvVar var_;
    std::unique_ptr<Module> module_;
    UKEY_FUNCTION_LIST* vendor_ = nullptr;
    CK_SLOT_ID slot_ = 0;
};

TEST(PassThrough, CardFlagsAndCountsOnlyTheCards)
{
    Card c;
    c.start();
    EXPECT_FLAGS(0, c.flags());
    EXPECT_EQ("user ?/?, so ?/?, flags 0x0", c.status()); // no UKEY_PIN_COUNTED_BY_UKEY

    CK_SESSION_HANDLE s = c.open();
    const CK_FLAGS after[] = {CKF_USER_PIN_COUNT_LOW, CKF_USER_PIN_COUNT_LOW | CKF_USER_PIN_FINAL_TRY,
                              CKF_USER_PIN_COUNT_LOW | CKF_USER_PIN_LOCKED};
    const char* status_after[] = {"user ?/?, so ?/?, flags 0x0", "user 1/?, so ?/?, flags 0x0",
                                  "user 0/?, so ?/?, flags 0x0"};
    for (int i = 0; i < 3; ++i) {
        SCOPED_TRACE("wrong PIN #" + std::to_string(i + 1));
        EXPECT_RV(CKR_PIN_INCORRECT, try_login(c.fl(), s, CKU_USER, "wrong-pin"));
        EXPECT_EQ(2 - i, c.card("user_left")) << "the card must count each wrong PIN exactly once";
        EXPECT_FLAGS(after[i], c.flags());
        EXPECT_EQ(status_after[i], c.status());
    }
    // Locked by the card: ukey passes its answer on.
    EXPECT_RV(CKR_PIN_LOCKED, try_login(c.fl(), s, CKU_USER, FAKECARD_DEFAULT_USER_PIN));
    EXPECT_EQ(0, c.card("user_left"));

    // The SO unlocks on the card; PIN quality is still ukey's.
    EXPECT_RV(CKR_PIN_INCORRECT, try_login(c.fl(), s, CKU_SO, "wrong-so"));
    EXPECT_EQ(2, c.card("so_left"));
    EXPECT_FLAGS(CKF_USER_PIN_COUNT_LOW | CKF_USER_PIN_LOCKED | CKF_SO_PIN_COUNT_LOW, c.flags());
    ASSERT_RV(CKR_OK, try_login(c.fl(), s, CKU_SO, FAKECARD_DEFAULT_SO_PIN));
    EXPECT_EQ(3, c.card("so_left"));
    EXPECT_RV(CKR_PIN_INVALID, init_pin(c.fl(), s, "111111"));
    EXPECT_EQ(0, c.card("user_left")); // rejected before the card
    ASSERT_RV(CKR_OK, init_pin(c.fl(), s, "fresh-card-pin"));
    EXPECT_EQ(3, c.card("user_left"));
    EXPECT_FLAGS(0, c.flags());

    // The vendor functions that only make sense when ukey counts.
    EXPECT_RV(CKR_FUNCTION_NOT_SUPPORTED, c.v()->C_UkeySetPinLimits(s, 3, 3));
    std::string t = "1111";
    EXPECT_RV(CKR_FUNCTION_NOT_SUPPORTED,
              c.v()->C_UkeyInitTransportPIN(s, reinterpret_cast<CK_UTF8CHAR_PTR>(t.data()), t.size()));
    ASSERT_RV(CKR_OK, c.fl()->C_Logout(s));

    // C_SetPIN: a wrong old PIN costs exactly one of the card's tries.
    EXPECT_RV(CKR_PIN_INCORRECT, set_pin(c.fl(), s, "wrong-old", "next-card-pin"));
    EXPECT_EQ(2, c.card("user_left"));
    EXPECT_FLAGS(CKF_USER_PIN_COUNT_LOW, c.flags());
    EXPECT_RV(CKR_PIN_INVALID, set_pin(c.fl(), s, "fresh-card-pin", "654321"));
    EXPECT_EQ(2, c.card("user_left"));
    EXPECT_RV(CKR_OK, set_pin(c.fl(), s, "fresh-card-pin", "next-card-pin"));
    EXPECT_EQ(3, c.card("user_left"));
    EXPECT_RV(CKR_OK, try_login(c.fl(), s, CKU_USER, "next-card-pin"));
    EXPECT_FLAGS(0, c.flags());

    EXPECT_TRUE(c.state_entries().empty()) << "ukey wrote " << c.state_entries().front();
}

// Whatever the card says is what the application sees, even what ukey did
// not witness (another application used the card).
TEST(PassThrough, FlagsComeFromTheCardAlone)
{
    Card c;
    c.set_card(1, 0);
    c.start();
    EXPECT_FLAGS(CKF_USER_PIN_COUNT_LOW | CKF_USER_PIN_FINAL_TRY | CKF_SO_PIN_COUNT_LOW | CKF_SO_PIN_LOCKED,
                 c.flags());
    EXPECT_EQ("user 1/?, so 0/?, flags 0x0", c.status());
    c.set_card(3, 3);
    EXPECT_FLAGS(0, c.flags());
    CK_SESSION_HANDLE s = c.open();
    EXPECT_RV(CKR_OK, try_login(c.fl(), s, CKU_USER, FAKECARD_DEFAULT_USER_PIN));
    EXPECT_TRUE(c.state_entries().empty());
}

// Several processes: the card's counter is the only one, and ukey in each
// process takes exactly one try per wrong PIN.
TEST(PassThrough, ProcessesShareTheCardsCounterOnly)
{
    Card c;
    for (int i = 0; i < 2; ++i) {
        Child child([&] {
            check(c.module().initialize(), "C_Initialize in child");
            const CK_SLOT_ID slot = slot_by_label(c.fl(), FAKECARD_LABEL);
            CK_SESSION_HANDLE s = open_session(c.fl(), slot, true);
            return rv_name(try_login(c.fl(), s, CKU_USER, "wrong-in-child"));
        });
        const std::string out = child.wait(30s);
        ASSERT_TRUE(child.exited_ok()) << child.status() << ": " << out;
        EXPECT_EQ("CKR_PIN_INCORRECT (0xA0)", out);
        EXPECT_EQ(2 - i, c.card("user_left"));
    }
    c.start();
    EXPECT_FLAGS(CKF_USER_PIN_COUNT_LOW | CKF_USER_PIN_FINAL_TRY, c.flags());
    EXPECT_TRUE(c.state_entries().empty());
}

// Side by side: a SoftHSM2 Key counted by ukey, the card counting itself.
TEST(PassThrough, NextToAKeyUkeyCounts)
{
    Card c(true);
    c.start();
    const CK_SLOT_ID hsm = slot_by_label(c.fl(), "ukey-test");
    CK_SESSION_HANDLE hs = open_session(c.fl(), hsm, true);
    CK_SESSION_HANDLE cs = c.open();
    EXPECT_RV(CKR_PIN_INCORRECT, try_login(c.fl(), hs, CKU_USER, "wrong"));
    EXPECT_RV(CKR_PIN_INCORRECT, try_login(c.fl(), hs, CKU_USER, "wrong"));
    EXPECT_RV(CKR_PIN_INCORRECT, try_login(c.fl(), cs, CKU_USER, "wrong"));
    EXPECT_EQ("user 4/6, so 6/6, flags 0x1", describe(pin_status(c.v(), hsm)));
    EXPECT_EQ(2, c.card("user_left"));
    EXPECT_FLAGS(CKF_USER_PIN_COUNT_LOW, c.flags());
    // One record, for the SoftHSM2 Key only.
    const auto entries = pin_dir_entries(c.env());
    ASSERT_EQ(1U, entries.size());
    EXPECT_EQ(0U, entries[0].filename().string().rfind("softhsm-", 0)) << entries[0];
}

} // namespace

// A Key that goes away takes its sessions with it (v2.40: removing a token
// closes its sessions), but only when the backend says so: a card that
// answers with an error is left out of the slot list and keeps its
// sessions (a passing error is not a pulled card); one that answers "device
// removed" ends them; back again, it opens sessions as before.
TEST(PassThrough, AKeyThatIsOutEndsItsSessionsAnErrorDoesNot)
{
    Card c;
    c.start();
    const CK_SESSION_HANDLE s = c.open();
    auto card_says = [&](const std::string& fault) {
        overwrite_file(c.env().dir() / "card.state", "fakecard 1 user_left=3 so_left=3 user_pin=" FAKECARD_DEFAULT_USER_PIN
                                                     " so_pin=" FAKECARD_DEFAULT_SO_PIN +
                                                         (fault.empty() ? "" : " fault=" + fault) + "\n");
    };
    auto listed = [&] {
        const auto ids = slot_list(c.fl(), true);
        return std::count(ids.begin(), ids.end(), c.slot()) > 0;
    };
    CK_SESSION_INFO info{};

    card_says("device_error");
    EXPECT_FALSE(listed());
    EXPECT_RV(CKR_OK, c.fl()->C_GetSessionInfo(s, &info)) << "an error ended the session";

    card_says("device_removed");
    EXPECT_FALSE(listed());
    EXPECT_RV(CKR_SESSION_HANDLE_INVALID, c.fl()->C_GetSessionInfo(s, &info));
    EXPECT_RV(CKR_SESSION_HANDLE_INVALID, c.fl()->C_CloseSession(s));

    card_says("");
    EXPECT_TRUE(listed());
    const CK_SESSION_HANDLE again = c.open();
    EXPECT_RV(CKR_OK, c.fl()->C_GetSessionInfo(again, &info));
    EXPECT_RV(CKR_OK, c.fl()->C_CloseSession(again));
    c.stop();
}
