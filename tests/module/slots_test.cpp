// Several backends behind one ukey slot list.
//
// Two SoftHSM2 backends, "alpha" and "beta", each with its own token
// directory (TestEnv gives the second one a private copy of libsofthsm2.so
// that reads its own configuration variable, see ukeytest/env.h). Every token
// carries a public "marker" data object, created through SoftHSM2 directly,
// whose value names its backend and label; that is how the tests know which
// backend a ukey slot really leads to, without trusting what the module
// reports about itself.
//
// ukey's promises checked here: slot IDs are derived from backend name and
// token identity (not list positions), so they are distinct, stable across
// C_Finalize/C_Initialize, across processes, across reordering the backends
// in the configuration and across adding a token; session and object handles
// are remapped so that handles of two backends never collide, and an object
// handle of one backend is invalid in a session of another (PKCS#11 v2.40:
// CKR_OBJECT_HANDLE_INVALID / CKR_KEY_HANDLE_INVALID).

#include "common.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

using namespace ukeytest;
using modtest::module_path;
using namespace std::chrono_literals;

namespace {

const char kMarkerLabel[] = "ukeytest-marker";
const char kDumpVariable[] = "UKEYTEST_SLOT_DUMP";
const std::string kUninitialised = "(uninitialised token)";

TokenSpec token(const std::string& label)
{
    TokenSpec t;
    t.label = label;
    return t;
}

BackendSpec backend(const std::string& name, const std::vector<std::string>& labels)
{
    BackendSpec b;
    b.name = name;
    b.tokens.clear();
    for (const auto& l : labels)
        b.tokens.push_back(token(l));
    return b;
}

std::string marker_value(const std::string& backend, const std::string& label)
{
    return backend + "/" + label;
}

// Creates the marker object in every token of `env` that does not have one.
void add_markers(TestEnv& env)
{
    for (size_t b = 0; b < env.backends().size(); ++b) {
        env.with_softhsm(b, [&](CK_FUNCTION_LIST* fl) {
            for (const auto& t : env.tokens()) {
                if (t.backend != b)
                    continue;
                CK_SESSION_HANDLE s = open_session(fl, slot_by_label(fl, t.spec.label));
                std::string label = kMarkerLabel;
                CK_OBJECT_CLASS cls = CKO_DATA;
                CK_ATTRIBUTE find[] = {{CKA_CLASS, &cls, sizeof cls},
                                       {CKA_LABEL, label.data(), label.size()}};
                if (find_objects(fl, s, {find[0], find[1]}).empty()) {
                    login(fl, s, CKU_USER, t.spec.user_pin);
                    std::string value = marker_value(env.backends()[b].name, t.spec.label);
                    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
                    CK_ATTRIBUTE tmpl[] = {{CKA_CLASS, &cls, sizeof cls},
                                           {CKA_TOKEN, &yes, sizeof yes},
                                           {CKA_PRIVATE, &no, sizeof no},
                                           {CKA_LABEL, label.data(), label.size()},
                                           {CKA_VALUE, value.data(), value.size()}};
                    CK_OBJECT_HANDLE o;
                    check(fl->C_CreateObject(s, tmpl, 5, &o), "C_CreateObject(marker)");
                    check(fl->C_Logout(s), "C_Logout");
                }
                check(fl->C_CloseSession(s), "C_CloseSession");
            }
        });
    }
}

// The marker object of the token in `session`'s slot.
CK_OBJECT_HANDLE marker_object(CK_FUNCTION_LIST* fl, CK_SESSION_HANDLE session)
{
    return find_by_label(fl, session, CKO_DATA, kMarkerLabel);
}

std::string read_marker(CK_FUNCTION_LIST* fl, CK_SESSION_HANDLE session)
{
    auto v = get_attribute(fl, session, marker_object(fl, session), CKA_VALUE);
    return std::string(v.begin(), v.end());
}

// slot ID -> marker of its token, for every slot of the module.
std::map<CK_SLOT_ID, std::string> slot_markers(CK_FUNCTION_LIST* fl)
{
    std::map<CK_SLOT_ID, std::string> m;
    for (CK_SLOT_ID slot : slot_list(fl, true)) {
        if (!(token_info(fl, slot).flags & CKF_TOKEN_INITIALIZED)) {
            m[slot] = kUninitialised;
            continue;
        }
        CK_SESSION_HANDLE s = open_session(fl, slot, false);
        m[slot] = read_marker(fl, s);
        check(fl->C_CloseSession(s), "C_CloseSession");
    }
    return m;
}

// marker -> slot ID (markers of initialised tokens are unique).
std::map<std::string, CK_SLOT_ID> by_marker(const std::map<CK_SLOT_ID, std::string>& m)
{
    std::map<std::string, CK_SLOT_ID> r;
    for (const auto& [slot, marker] : m)
        if (marker != kUninitialised)
            r[marker] = slot;
    return r;
}

std::string describe(const std::map<CK_SLOT_ID, std::string>& m)
{
    std::ostringstream os;
    for (const auto& [slot, marker] : m)
        os << "  slot " << slot << ": " << marker << "\n";
    return os.str();
}

class Slots : public testing::Test {
protected:
    void SetUp() override
    {
        env_ = std::make_unique<TestEnv>(std::vector<BackendSpec>{
            backend("alpha", {"alpha-token", "same-label"}),
            backend("beta", {"beta-token", "same-label"})});
        add_markers(*env_);
        module_ = std::make_unique<Module>(module_path());
        ASSERT_RV(CKR_OK, module_->initialize());
    }
    void TearDown() override
    {
        module_.reset();
        env_.reset();
    }
    CK_FUNCTION_LIST* fl() { return module_->fl(); }

    // The slot whose token has this marker (exactly one).
    CK_SLOT_ID slot_of(const std::string& backend, const std::string& label)
    {
        auto m = by_marker(slot_markers(fl()));
        auto it = m.find(marker_value(backend, label));
        if (it == m.end())
            throw std::runtime_error("no slot leads to " + marker_value(backend, label));
        return it->second;
    }

    std::unique_ptr<TestEnv> env_;
    std::unique_ptr<Module> module_;
};

// One slot list, distinct IDs, every token once, uninitialised SoftHSM2
// slots (one per backend) with their own IDs too.
TEST_F(Slots, OneListWithDistinctIds)
{
    auto present = slot_list(fl(), true);
    auto all = slot_list(fl(), false);
    std::set<CK_SLOT_ID> unique_all(all.begin(), all.end());
    EXPECT_EQ(unique_all.size(), all.size()) << "duplicate slot IDs in C_GetSlotList(FALSE)";
    for (CK_SLOT_ID s : present)
        EXPECT_TRUE(unique_all.count(s)) << "slot " << s << " with token missing from full list";

    auto m = slot_markers(fl());
    std::multiset<std::string> markers;
    for (const auto& [slot, marker] : m)
        markers.insert(marker);
    for (const auto& t : env_->tokens())
        EXPECT_EQ(markers.count(marker_value(env_->backends()[t.backend].name, t.spec.label)), 1u)
            << "token " << t.spec.label << " of " << env_->backends()[t.backend].name << "\n"
            << describe(m);
    EXPECT_EQ(m.size() - markers.count(kUninitialised), env_->tokens().size()) << describe(m);
}

// A token looked up by its label leads to the backend that holds it; the two
// "same-label" tokens are two slots, one per backend.
TEST_F(Slots, TokenFoundByLabelInTheRightBackend)
{
    for (const auto& [backend, label] : std::vector<std::pair<std::string, std::string>>{
             {"alpha", "alpha-token"}, {"beta", "beta-token"}}) {
        SCOPED_TRACE(label);
        CK_SLOT_ID slot = slot_by_label(fl(), label);
        CK_SESSION_HANDLE s = open_session(fl(), slot, false);
        EXPECT_EQ(read_marker(fl(), s), marker_value(backend, label));
        // The token info is the backend's (serial number passed through).
        const TokenRecord& rec = env_->token(label);
        CK_TOKEN_INFO ti = token_info(fl(), slot);
        EXPECT_EQ(trim_field(ti.serialNumber), rec.serial);
    }
    auto same = slots_with_label(fl(), "same-label");
    ASSERT_EQ(same.size(), 2u);
    EXPECT_NE(same[0], same[1]);
    std::set<std::string> seen;
    for (CK_SLOT_ID slot : same) {
        CK_SESSION_HANDLE s = open_session(fl(), slot, false);
        seen.insert(read_marker(fl(), s));
    }
    EXPECT_EQ(seen, (std::set<std::string>{marker_value("alpha", "same-label"),
                                           marker_value("beta", "same-label")}));
}

TEST_F(Slots, IdsStableAcrossFinalizeInitialize)
{
    auto before = slot_markers(fl());
    for (int i = 0; i < 3; ++i) {
        ASSERT_RV(CKR_OK, module_->finalize());
        ASSERT_RV(CKR_OK, module_->initialize());
        auto after = slot_markers(fl());
        EXPECT_EQ(after, before) << "cycle " << i << "\nbefore:\n"
                                 << describe(before) << "after:\n"
                                 << describe(after);
    }
}

// Slot IDs are derived from backend name + token, not from the position of
// the backend in ukey.conf.
TEST_F(Slots, IdsIndependentOfBackendOrder)
{
    auto before = slot_markers(fl());
    ASSERT_RV(CKR_OK, module_->finalize());
    env_->rewrite_ukey_conf({1, 0});
    ASSERT_RV(CKR_OK, module_->initialize());
    auto after = slot_markers(fl());
    EXPECT_EQ(by_marker(after), by_marker(before)) << "before:\n"
                                                   << describe(before) << "after (beta first):\n"
                                                   << describe(after);
}

// A new token in a backend (which shifts SoftHSM2's slot list) does not
// change the other slot IDs.
TEST_F(Slots, IdsStableWhenATokenIsAdded)
{
    auto before = slot_markers(fl());
    ASSERT_RV(CKR_OK, module_->finalize());
    env_->add_token(0, token("late-token"));
    env_->add_token(1, token("late-token-b"));
    add_markers(*env_);
    ASSERT_RV(CKR_OK, module_->initialize());
    auto after = slot_markers(fl());
    auto b = by_marker(before), a = by_marker(after);
    for (const auto& [marker, slot] : b) {
        ASSERT_TRUE(a.count(marker)) << marker << " vanished\n" << describe(after);
        EXPECT_EQ(a[marker], slot) << marker << " moved";
    }
    ASSERT_TRUE(a.count(marker_value("alpha", "late-token"))) << describe(after);
    ASSERT_TRUE(a.count(marker_value("beta", "late-token-b"))) << describe(after);
    std::set<CK_SLOT_ID> ids;
    for (const auto& [marker, slot] : a)
        EXPECT_TRUE(ids.insert(slot).second) << "duplicate slot ID " << slot;
}

// Helper run as a second process by IdsStableAcrossProcesses.
TEST(SlotsHelper, DISABLED_DumpSlotMarkers)
{
    const char* out = std::getenv(kDumpVariable);
    if (!out)
        GTEST_SKIP() << kDumpVariable << " not set; only run by Slots.IdsStableAcrossProcesses";
    Module m(module_path());
    ASSERT_RV(CKR_OK, m.initialize());
    std::ofstream f(out);
    for (const auto& [slot, marker] : slot_markers(m.fl()))
        f << slot << " " << marker << "\n";
    ASSERT_TRUE(f.good());
}

std::map<CK_SLOT_ID, std::string> dump_from_other_process(const std::filesystem::path& file,
                                                          ChildResult& result)
{
    ScopedEnvVar var(kDumpVariable, file.string());
    result = run_program({self_exe(), "--gtest_filter=SlotsHelper.DISABLED_DumpSlotMarkers",
                          "--gtest_also_run_disabled_tests"},
                         60s);
    std::map<CK_SLOT_ID, std::string> m;
    std::ifstream f(file);
    CK_SLOT_ID slot;
    std::string marker;
    while (f >> slot && std::getline(f >> std::ws, marker))
        m[slot] = marker;
    return m;
}

// Another process (this binary, re-executed) sees the same slot IDs, both
// while this process has the module initialised and while it has not.
TEST_F(Slots, IdsStableAcrossProcesses)
{
    auto here = slot_markers(fl());
    for (bool initialized_here : {true, false}) {
        SCOPED_TRACE(initialized_here ? "parent initialised" : "parent finalised");
        if (!initialized_here) {
            ASSERT_RV(CKR_OK, module_->finalize());
        }
        ChildResult r;
        auto there = dump_from_other_process(
            env_->dir() / (initialized_here ? "dump1.txt" : "dump2.txt"), r);
        EXPECT_EQ(there, here) << "this process:\n"
                               << describe(here) << "other process:\n"
                               << describe(there) << r.describe();
        EXPECT_TRUE(r.ok()) << "helper process: " << r.describe();
    }
}

// Session handles of different backends never collide (both SoftHSM2
// instances number their own sessions from 1), and each reports its slot.
TEST_F(Slots, SessionHandlesNeverCollide)
{
    std::vector<CK_SLOT_ID> slots = {slot_of("alpha", "alpha-token"),
                                     slot_of("beta", "beta-token"),
                                     slot_of("alpha", "same-label"),
                                     slot_of("beta", "same-label")};
    std::map<CK_SESSION_HANDLE, CK_SLOT_ID> sessions;
    for (int round = 0; round < 5; ++round)
        for (CK_SLOT_ID slot : slots) {
            CK_SESSION_HANDLE h = open_session(fl(), slot, round % 2);
            EXPECT_TRUE(sessions.emplace(h, slot).second)
                << "session handle " << h << " handed out twice";
        }
    for (const auto& [h, slot] : sessions) {
        CK_SESSION_INFO info{};
        ASSERT_RV(CKR_OK, fl()->C_GetSessionInfo(h, &info));
        EXPECT_EQ(info.slotID, slot) << "session " << h;
    }
    // Closing one backend's sessions leaves the other's alone.
    ASSERT_RV(CKR_OK, fl()->C_CloseAllSessions(slots[0]));
    for (const auto& [h, slot] : sessions) {
        CK_SESSION_INFO info{};
        EXPECT_RV(slot == slots[0] ? CKR_SESSION_HANDLE_INVALID : CKR_OK,
                  fl()->C_GetSessionInfo(h, &info))
            << "session " << h << " of slot " << slot;
    }
}

// An object handle obtained in a session of backend A is not valid in a
// session of backend B (CKR_OBJECT_HANDLE_INVALID; CKR_KEY_HANDLE_INVALID
// where the handle is a key argument), in both directions.
TEST_F(Slots, ObjectHandleFromAnotherBackendIsInvalid)
{
    struct Side {
        std::string backend, label;
        CK_SESSION_HANDLE session;
        CK_OBJECT_HANDLE marker;
        KeyPair key{KeyKind::EcP256};
    };
    std::vector<Side> sides = {{"alpha", "alpha-token", 0, 0}, {"beta", "beta-token", 0, 0}};
    for (auto& s : sides) {
        s.session = open_session(fl(), slot_of(s.backend, s.label));
        login(fl(), s.session, CKU_USER, TokenSpec{}.user_pin);
        s.marker = marker_object(fl(), s.session);
        s.key = generate_key_pair(fl(), s.session, KeyKind::EcP256, "cross-" + s.backend);
    }
    std::set<CK_OBJECT_HANDLE> a = {sides[0].marker, sides[0].key.pub, sides[0].key.priv};
    for (CK_OBJECT_HANDLE h : {sides[1].marker, sides[1].key.pub, sides[1].key.priv})
        EXPECT_FALSE(a.count(h)) << "object handle " << h << " used by both backends";

    for (int dir = 0; dir < 2; ++dir) {
        const Side& owner = sides[dir];
        const Side& other = sides[1 - dir];
        SCOPED_TRACE(owner.backend + "'s objects used in a session of " + other.backend);
        CK_BYTE buf[256];
        CK_ATTRIBUTE attr{CKA_VALUE, buf, sizeof buf};
        const CK_RV OI = CKR_OBJECT_HANDLE_INVALID;
        EXPECT_RV(OI, fl()->C_GetAttributeValue(other.session, owner.marker, &attr, 1));
        CK_ULONG size = 0;
        EXPECT_RV(OI, fl()->C_GetObjectSize(other.session, owner.marker, &size));
        char lbl[] = "x";
        CK_ATTRIBUTE set{CKA_LABEL, lbl, 1};
        EXPECT_RV(OI, fl()->C_SetAttributeValue(other.session, owner.marker, &set, 1));
        CK_OBJECT_HANDLE copy = 0;
        EXPECT_RV(OI, fl()->C_CopyObject(other.session, owner.marker, &set, 1, &copy));
        EXPECT_RV(OI, fl()->C_DestroyObject(other.session, owner.marker));
        CK_MECHANISM ecdsa{CKM_ECDSA, nullptr, 0};
        EXPECT_RV(CKR_KEY_HANDLE_INVALID, fl()->C_SignInit(other.session, &ecdsa, owner.key.priv));
        EXPECT_RV(CKR_KEY_HANDLE_INVALID, fl()->C_VerifyInit(other.session, &ecdsa, owner.key.pub));
        // Nothing happened to the owner's objects.
        EXPECT_EQ(read_marker(fl(), owner.session), marker_value(owner.backend, owner.label));
        auto sig = sign(fl(), owner.session, owner.key, {1, 2, 3});
        EXPECT_TRUE(verify(public_key(fl(), owner.session, owner.key).get(), KeyKind::EcP256,
                           {1, 2, 3}, sig));
    }
}

// Same backend, different token: an object of token X is not an object of
// token Y either.
TEST_F(Slots, ObjectHandleFromAnotherTokenOfTheSameBackendIsInvalid)
{
    CK_SESSION_HANDLE x = open_session(fl(), slot_of("alpha", "alpha-token"), false);
    CK_SESSION_HANDLE y = open_session(fl(), slot_of("alpha", "same-label"), true);
    CK_OBJECT_HANDLE mx = marker_object(fl(), x);
    CK_BYTE buf[256];
    CK_ATTRIBUTE attr{CKA_VALUE, buf, sizeof buf};
    EXPECT_RV(CKR_OBJECT_HANDLE_INVALID, fl()->C_GetAttributeValue(y, mx, &attr, 1));
    CK_ULONG size = 0;
    EXPECT_RV(CKR_OBJECT_HANDLE_INVALID, fl()->C_GetObjectSize(y, mx, &size));
    EXPECT_RV(CKR_OBJECT_HANDLE_INVALID, fl()->C_DestroyObject(y, mx));
    std::string label = kMarkerLabel;
    CK_OBJECT_CLASS cls = CKO_DATA;
    EXPECT_EQ(find_objects(fl(), x, {{CKA_CLASS, &cls, sizeof cls},
                                     {CKA_LABEL, label.data(), label.size()}})
                  .size(),
              1u)
        << "alpha-token's marker object was destroyed through a session of another token";
    EXPECT_EQ(read_marker(fl(), y), marker_value("alpha", "same-label"));
}

}  // namespace
