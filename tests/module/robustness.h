// Robustness of the PKCS#11 entry points of libukey-pkcs11.so: what the
// four robustness_*_test binaries share (one binary per table, so that they
// run in parallel):
//   robustness_before_init_test  (a) every function before C_Initialize; exports
//   robustness_null_test         (b) NULL for every pointer argument that must not be NULL
//   robustness_handles_test      (c) invalid slot / session / object / key handles
//   robustness_init_test         (d) C_Initialize arguments and broken configurations,
//                                (e) C_GetInterfaceList / C_GetInterface vs C_GetFunctionList
//
// The tables are gtest value-parameterised suites (one test per row) so that
// a crash on one row is reported as that row. Coverage tests check that the
// tables really span all 68 functions (by CK_FUNCTION_LIST position).
//
// References are to the PKCS#11 v2.40 base specification (OASIS
// pkcs11-base-v2.40), by function name.
#pragma once


#include "common.h"

#include <dlfcn.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstdlib>
#include <chrono>
#include <cstring>
#include <functional>
#include <map>
#include <type_traits>
#include <mutex>
#include <set>
#include <thread>

using namespace ukeytest;
using modtest::module_path;
using namespace std::chrono_literals;

namespace robust {

// Handle values nobody hands out (checked where it matters).
inline constexpr CK_ULONG kBogusHandle = 0x5A5A0F0FUL;
inline constexpr CK_SLOT_ID kBogusSlot = 0x7EADBEEFUL;

inline const std::set<std::string> kMayBeUnsupported = {
    // Functions SoftHSM2 does not implement; PKCS#11 v2.40 (section "Functions",
    // introduction) allows a module to implement them as a stub that "simply
    // returns CKR_FUNCTION_NOT_SUPPORTED".
    "C_GetOperationState",   "C_SetOperationState",   "C_SignRecoverInit",
    "C_SignRecover",         "C_VerifyRecoverInit",   "C_VerifyRecover",
    "C_DigestEncryptUpdate", "C_DecryptDigestUpdate", "C_SignEncryptUpdate",
    "C_DecryptVerifyUpdate", "C_GetFunctionStatus",   "C_CancelFunction",
};

inline std::string test_name(std::string s)
{
    for (char& ch : s)
        if (!std::isalnum(static_cast<unsigned char>(ch)))
            ch = '_';
    return s;
}

inline CK_BBOOL kTrue = CK_TRUE;
inline CK_BBOOL kFalse = CK_FALSE;


// A configured environment (UKEY_CONF, SoftHSM2 token), module not initialised.
class EnvSuite : public testing::Test {
protected:
    void SetUp() override { env_ = std::make_unique<TestEnv>(); }
    void TearDown() override { env_.reset(); }
    std::unique_ptr<TestEnv> env_;
};

// ============================================================================
// Shared, logged-in state for tables (b) and (c)
// ============================================================================

inline const char kEcLabel[] = "robust-ec";
inline const char kAesLabel[] = "robust-aes";
inline const char kHmacLabel[] = "robust-hmac";
inline const char kDataLabel[] = "robust-data";

// Per-test: module initialised, user logged in, handles of the suite's keys.
// Holds pointers into itself: never copied or moved.
struct Ctx {
    CK_FUNCTION_LIST* fl = nullptr;
    CK_SLOT_ID slot = 0;
    CK_SESSION_HANDLE session = 0;
    KeyPair ec{KeyKind::EcP256};
    CK_OBJECT_HANDLE aes = 0, hmac = 0, data = 0;
    std::string so_pin = modtest::kDefaultToken.so_pin;
    std::string user_pin = modtest::kDefaultToken.user_pin;

    CK_BYTE in[64];
    CK_BYTE out[4096]{};
    CK_BYTE out2[4096]{};
    CK_ULONG len = sizeof out, ul = 0;
    CK_SLOT_ID slots[64]{};
    CK_MECHANISM_TYPE mechs[256]{};
    CK_SLOT_INFO slot_info{};
    CK_TOKEN_INFO token_info{};
    CK_MECHANISM_INFO mech_info{};
    CK_SESSION_INFO session_info{};
    CK_OBJECT_HANDLE objs[8]{}, h1 = 0, h2 = 0;
    CK_UTF8CHAR label[32];

    CK_BYTE iv[16]{};
    CK_MECHANISM aes_cbc{CKM_AES_CBC_PAD, iv, sizeof iv};
    CK_MECHANISM sha256{CKM_SHA256, nullptr, 0};
    CK_MECHANISM hmac_mech{CKM_SHA256_HMAC, nullptr, 0};
    CK_MECHANISM ecdsa{CKM_ECDSA, nullptr, 0};
    CK_MECHANISM aes_gen{CKM_AES_KEY_GEN, nullptr, 0};
    CK_MECHANISM ec_gen{CKM_EC_KEY_PAIR_GEN, nullptr, 0};
    CK_MECHANISM aes_wrap{CKM_AES_KEY_WRAP, nullptr, 0};
    CK_KEY_DERIVATION_STRING_DATA derive_params{in, 16};
    CK_MECHANISM derive{CKM_AES_ECB_ENCRYPT_DATA, &derive_params, sizeof derive_params};

    CK_OBJECT_CLASS data_class = CKO_DATA, secret_class = CKO_SECRET_KEY;
    CK_KEY_TYPE aes_type = CKK_AES, generic_type = CKK_GENERIC_SECRET;
    CK_ULONG len32 = 32, len16 = 16;
    CK_BYTE p256[10] = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};
    char new_label[8] = "renamed";
    std::vector<CK_ATTRIBUTE> data_tmpl, label_tmpl, get_label_tmpl, find_tmpl, aes_tmpl,
        ec_pub_tmpl, ec_priv_tmpl, unwrap_tmpl, derive_tmpl;

    explicit Ctx(CK_FUNCTION_LIST* f) : fl(f)
    {
        for (size_t i = 0; i < sizeof in; ++i)
            in[i] = static_cast<CK_BYTE>(i);
        std::memset(label, ' ', sizeof label);
        data_tmpl = {{CKA_CLASS, &data_class, sizeof data_class},
                     {CKA_TOKEN, &kFalse, sizeof kFalse},
                     {CKA_PRIVATE, &kFalse, sizeof kFalse},
                     {CKA_LABEL, new_label, 7},
                     {CKA_VALUE, in, 8}};
        label_tmpl = {{CKA_LABEL, new_label, 7}};
        get_label_tmpl = {{CKA_LABEL, out2, sizeof out2}};
        find_tmpl = {{CKA_CLASS, &data_class, sizeof data_class}};
        aes_tmpl = {{CKA_TOKEN, &kFalse, sizeof kFalse}, {CKA_VALUE_LEN, &len32, sizeof len32}};
        ec_pub_tmpl = {{CKA_TOKEN, &kFalse, sizeof kFalse}, {CKA_EC_PARAMS, p256, sizeof p256}};
        ec_priv_tmpl = {{CKA_TOKEN, &kFalse, sizeof kFalse}, {CKA_SIGN, &kTrue, sizeof kTrue}};
        unwrap_tmpl = {{CKA_CLASS, &secret_class, sizeof secret_class},
                       {CKA_KEY_TYPE, &generic_type, sizeof generic_type},
                       {CKA_TOKEN, &kFalse, sizeof kFalse}};
        derive_tmpl = {{CKA_CLASS, &secret_class, sizeof secret_class},
                       {CKA_KEY_TYPE, &aes_type, sizeof aes_type},
                       {CKA_VALUE_LEN, &len16, sizeof len16},
                       {CKA_TOKEN, &kFalse, sizeof kFalse}};

        slot = slot_by_label(fl, modtest::kDefaultToken.label);
        session = open_session(fl, slot, true);
        login(fl, session, CKU_USER, user_pin);
        ec = find_key_pair(fl, session, KeyKind::EcP256, kEcLabel);
        aes = find_by_label(fl, session, CKO_SECRET_KEY, kAesLabel);
        hmac = find_by_label(fl, session, CKO_SECRET_KEY, kHmacLabel);
        data = find_by_label(fl, session, CKO_DATA, kDataLabel);
    }

    CK_ULONG* L()
    {
        len = sizeof out;
        return &len;
    }
    CK_UTF8CHAR* pin(std::string& p) { return reinterpret_cast<CK_UTF8CHAR*>(p.data()); }
    void must(CK_RV rv, const char* what) { check(rv, std::string("row setup: ") + what); }

    CK_SESSION_HANDLE fresh() { return open_session(fl, slot, true); }
    // A fresh session with an operation started by `init` (C_EncryptInit...).
    template <class... Args>
    CK_SESSION_HANDLE started(CK_RV (*init)(CK_SESSION_HANDLE, Args...), const char* what,
                              std::type_identity_t<Args>... args)
    {
        auto s = fresh();
        must(init(s, args...), what);
        return s;
    }
    CK_SESSION_HANDLE encrypting() { return started(fl->C_EncryptInit, "C_EncryptInit", &aes_cbc, aes); }
    CK_SESSION_HANDLE decrypting() { return started(fl->C_DecryptInit, "C_DecryptInit", &aes_cbc, aes); }
    CK_SESSION_HANDLE digesting() { return started(fl->C_DigestInit, "C_DigestInit", &sha256); }
    CK_SESSION_HANDLE signing() { return started(fl->C_SignInit, "C_SignInit(HMAC)", &hmac_mech, hmac); }
    CK_SESSION_HANDLE verifying() { return started(fl->C_VerifyInit, "C_VerifyInit(HMAC)", &hmac_mech, hmac); }
    CK_SESSION_HANDLE finding()
    {
        return started(fl->C_FindObjectsInit, "C_FindObjectsInit", find_tmpl.data(), find_tmpl.size());
    }
    // Two operations at once for the dual-function calls; best effort, as
    // backends may not allow concurrent operations in one session.
    CK_SESSION_HANDLE dual(CK_MECHANISM* first, CK_OBJECT_HANDLE first_key, int kind)
    {
        auto s = fresh();
        if (kind == 0)
            (void)fl->C_DigestInit(s, &sha256);
        else if (kind == 1)
            (void)fl->C_SignInit(s, first, first_key);
        else if (kind == 2)
            (void)fl->C_VerifyInit(s, first, first_key);
        return s;
    }
    CK_OBJECT_HANDLE session_object()
    {
        CK_OBJECT_HANDLE o = 0;
        must(fl->C_CreateObject(session, data_tmpl.data(), data_tmpl.size(), &o),
             "C_CreateObject");
        return o;
    }
};

// Every test (every table row) gets its own TestEnv, token and keys, so a
// row that goes wrong cannot disturb the next one.
class LoggedInSuite : public testing::Test {
protected:
    void SetUp() override
    {
        env_ = std::make_unique<TestEnv>();
        // Keys are made with SoftHSM2 directly, so that the tables do not
        // depend on the module's key generation.
        ASSERT_NO_THROW(env_->with_softhsm(0, [this](CK_FUNCTION_LIST* fl) {
            CK_SLOT_ID slot = slot_by_label(fl, modtest::kDefaultToken.label);
            CK_SESSION_HANDLE s = open_session(fl, slot, true);
            login(fl, s, CKU_USER, modtest::kDefaultToken.user_pin);
            generate_key_pair(fl, s, KeyKind::EcP256, kEcLabel);
            generate_aes_key(fl, s, kAesLabel, true);
            generate_hmac_key(fl, s, kHmacLabel, true);
            CK_OBJECT_CLASS cls = CKO_DATA;
            std::string lbl = kDataLabel;
            CK_BYTE value[4] = {1, 2, 3, 4};
            CK_ATTRIBUTE t[] = {{CKA_CLASS, &cls, sizeof cls},
                                {CKA_TOKEN, &kTrue, sizeof kTrue},
                                {CKA_PRIVATE, &kFalse, sizeof kFalse},
                                {CKA_LABEL, lbl.data(), lbl.size()},
                                {CKA_VALUE, value, sizeof value}};
            CK_OBJECT_HANDLE o;
            check(fl->C_CreateObject(s, t, 5, &o), "C_CreateObject(data)");
            raw_slots_ = slot_list(fl, false);
            check(fl->C_CloseSession(s), "C_CloseSession");
        })) << "test setup through SoftHSM2 directly failed";
        module_ = std::make_unique<Module>(module_path());
        ASSERT_RV(CKR_OK, module_->initialize());
        try {
            ctx_ = std::make_unique<Ctx>(module_->fl());
        } catch (const std::exception& e) {
            FAIL() << "per-test setup through the module failed: " << e.what();
        }
    }
    void TearDown() override
    {
        ctx_.reset();
        module_.reset();  // C_Finalize
        env_.reset();
    }

    std::unique_ptr<TestEnv> env_;
    std::vector<CK_SLOT_ID> raw_slots_;  // SoftHSM2's own slot IDs
    std::unique_ptr<Module> module_;
    std::unique_ptr<Ctx> ctx_;
};

}  // namespace robust
