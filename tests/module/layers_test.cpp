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
