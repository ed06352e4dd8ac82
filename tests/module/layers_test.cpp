// The stack of layers (token/layer.h) as an application sees it: a layer
// can be switched off per backend, and then the backend's own answer comes
// through.
#include "common.h"

#include <string>

using namespace ukeytest;
using modtest::module_path;

namespace {

// C_EncryptInit with the handle of a key that was destroyed: a handle of the
// right token that the backend no longer knows. SoftHSM2 answers
// CKR_OBJECT_HANDLE_INVALID; v2.40 lists only CKR_KEY_HANDLE_INVALID, which
// BackendFixes makes of it unless the backend has `fixes = false`.
CK_RV encrypt_init_with_destroyed_key(bool fixes)
{
    TestEnv env;
    if (!fixes) {
        std::string conf = env.ukey_conf_text();
        const auto at = conf.find("[[backend]]");
        EXPECT_NE(at, std::string::npos);
        conf.insert(conf.find('\n', at) + 1, "fixes = false\n");
        env.write_ukey_conf(conf);
    }
    Module m(module_path());
    EXPECT_RV(CKR_OK, m.initialize());
    const CK_SLOT_ID slot = slot_by_label(m.fl(), modtest::kDefaultToken.label);
    const CK_SESSION_HANDLE s = open_session(m.fl(), slot, true);
    login(m.fl(), s, CKU_USER, modtest::kDefaultToken.user_pin);
    CK_MECHANISM gen{CKM_AES_KEY_GEN, nullptr, 0};
    CK_ULONG len = 16;
    CK_BBOOL no = CK_FALSE;
    CK_ATTRIBUTE t[] = {{CKA_VALUE_LEN, &len, sizeof len}, {CKA_TOKEN, &no, sizeof no}};
    CK_OBJECT_HANDLE key = CK_INVALID_HANDLE;
    EXPECT_RV(CKR_OK, m->C_GenerateKey(s, &gen, t, 2, &key));
    EXPECT_RV(CKR_OK, m->C_DestroyObject(s, key));
    CK_BYTE iv[16] = {};
    CK_MECHANISM cbc{CKM_AES_CBC_PAD, iv, sizeof iv};
    return m->C_EncryptInit(s, &cbc, key);
}

TEST(BackendFixes, OnByDefault)
{
    EXPECT_RV(CKR_KEY_HANDLE_INVALID, encrypt_init_with_destroyed_key(true));
}

TEST(BackendFixes, OffForABackendWithFixesFalse)
{
    EXPECT_RV(CKR_OBJECT_HANDLE_INVALID, encrypt_init_with_destroyed_key(false));
}

}  // namespace

namespace {

// CKF_REMOVABLE_DEVICE of the Key's slot, with the backend's `removable`
// setting (nullptr: not in the config). Debian's SoftHSM2 reports its slots
// as fixed, so the flag is ukey's doing.
CK_FLAGS slot_flags(const char* removable)
{
    TestEnv env;
    if (removable) {
        std::string conf = env.ukey_conf_text();
        const auto at = conf.find("[[backend]]");
        EXPECT_NE(at, std::string::npos);
        conf.insert(conf.find('\n', at) + 1, std::string("removable = ") + removable + "\n");
        env.write_ukey_conf(conf);
    }
    Module m(module_path());
    EXPECT_RV(CKR_OK, m.initialize());
    const CK_SLOT_ID slot = slot_by_label(m.fl(), modtest::kDefaultToken.label);
    CK_SLOT_INFO info{};
    EXPECT_RV(CKR_OK, m->C_GetSlotInfo(slot, &info));
    return info.flags;
}

TEST(RemovableKeys, SlotsAreRemovableByDefault)
{
    const CK_FLAGS f = slot_flags(nullptr);
    EXPECT_TRUE(f & CKF_REMOVABLE_DEVICE);
    EXPECT_TRUE(f & CKF_TOKEN_PRESENT);
    EXPECT_EQ(slot_flags("true") & CKF_REMOVABLE_DEVICE, CKF_REMOVABLE_DEVICE);
}

TEST(RemovableKeys, FalseKeepsTheBackendsAnswer)
{
    // What SoftHSM2 itself says of the slot, straight from the module.
    TestEnv env;
    Module direct(env.softhsm_library(0).string());
    ASSERT_RV(CKR_OK, direct.initialize());
    const CK_SLOT_ID slot = slot_by_label(direct.fl(), modtest::kDefaultToken.label);
    CK_SLOT_INFO info{};
    ASSERT_RV(CKR_OK, direct->C_GetSlotInfo(slot, &info));
    direct.finalize();
    // Else SlotsAreRemovableByDefault would prove nothing.
    EXPECT_FALSE(info.flags & CKF_REMOVABLE_DEVICE) << "SoftHSM2 reports removable slots itself now";
    EXPECT_EQ(slot_flags("false") & CKF_REMOVABLE_DEVICE, info.flags & CKF_REMOVABLE_DEVICE);
}

}  // namespace
