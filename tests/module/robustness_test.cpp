// Robustness of the PKCS#11 entry points of libukey-pkcs11.so:
//   (a) every one of the 68 v2.40 functions before C_Initialize,
//   (b) NULL for every pointer argument that must not be NULL,
//   (c) invalid slot / session / object / key handles,
//   (d) C_Initialize arguments and broken configurations,
//   (e) C_GetInterfaceList / C_GetInterface vs C_GetFunctionList.
//
// The tables are gtest value-parameterised suites (one test per row) so that
// a crash on one row is reported as that row. Coverage tests check that the
// tables really span all 68 functions (by CK_FUNCTION_LIST position).
//
// References are to the PKCS#11 v2.40 base specification (OASIS
// pkcs11-base-v2.40), by function name.

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
#include <mutex>
#include <set>
#include <thread>

using namespace ukeytest;
using modtest::module_path;
using namespace std::chrono_literals;

namespace {

// Handle values nobody hands out (checked where it matters).
constexpr CK_ULONG kBogusHandle = 0x5A5A0F0FUL;
constexpr CK_SLOT_ID kBogusSlot = 0x7EADBEEFUL;

const std::set<std::string> kMayBeUnsupported = {
    // Functions SoftHSM2 does not implement; PKCS#11 v2.40 (section "Functions",
    // introduction) allows a module to implement them as a stub that "simply
    // returns CKR_FUNCTION_NOT_SUPPORTED".
    "C_GetOperationState",   "C_SetOperationState",   "C_SignRecoverInit",
    "C_SignRecover",         "C_VerifyRecoverInit",   "C_VerifyRecover",
    "C_DigestEncryptUpdate", "C_DecryptDigestUpdate", "C_SignEncryptUpdate",
    "C_DecryptVerifyUpdate", "C_GetFunctionStatus",   "C_CancelFunction",
};

std::string test_name(std::string s)
{
    for (char& ch : s)
        if (!std::isalnum(static_cast<unsigned char>(ch)))
            ch = '_';
    return s;
}

CK_BBOOL kTrue = CK_TRUE;
CK_BBOOL kFalse = CK_FALSE;

// ============================================================================
// (a) Every function before C_Initialize
// ============================================================================

// Plausible arguments: valid pointers, handle values that would be valid
// once initialised. Only the "not initialised" state is wrong.
struct Scratch {
    CK_INFO info{};
    CK_SLOT_ID slots[16]{};
    CK_ULONG count = 16;
    CK_SLOT_INFO slot_info{};
    CK_TOKEN_INFO token_info{};
    CK_MECHANISM_TYPE mechs[64]{};
    CK_MECHANISM_INFO mech_info{};
    CK_SESSION_INFO session_info{};
    CK_SESSION_HANDLE session = 1, new_session = 0;
    CK_OBJECT_HANDLE object = 1, new_object = 0, new_object2 = 0;
    CK_OBJECT_HANDLE objects[8]{};
    CK_BYTE in[64]{};
    CK_BYTE out[1024]{};
    CK_ULONG len = sizeof out;
    CK_UTF8CHAR pin[8] = {'1', '2', '3', '4', '5', '6', '7', '8'};
    CK_UTF8CHAR label[32];
    CK_MECHANISM mech{CKM_SHA256, nullptr, 0};
    CK_ATTRIBUTE attr{CKA_LABEL, out, 16};
    CK_FUNCTION_LIST* list = nullptr;
    CK_SLOT_ID event_slot = 0;
    Scratch() { std::memset(label, ' ', sizeof label); }
    CK_ULONG* L()
    {
        len = sizeof out;
        return &len;
    }
};

struct BeforeInitRow {
    const char* fn;
    size_t index;
    std::function<CK_RV(CK_FUNCTION_LIST*, Scratch&)> call;
};

void PrintTo(const BeforeInitRow& r, std::ostream* os)
{
    *os << r.fn;
}

#define BROW(fn, ...)                                        \
    BeforeInitRow{#fn, UKEYTEST_FN_INDEX(fn),                \
                  [](CK_FUNCTION_LIST* f, [[maybe_unused]] Scratch& a) -> CK_RV { __VA_ARGS__ }}

const std::vector<BeforeInitRow>& before_init_rows()
{
    static const std::vector<BeforeInitRow> rows = {
        BROW(C_Initialize, return f->C_Initialize(nullptr);),
        BROW(C_Finalize, return f->C_Finalize(nullptr);),
        BROW(C_GetInfo, return f->C_GetInfo(&a.info);),
        BROW(C_GetFunctionList, return f->C_GetFunctionList(&a.list);),
        BROW(C_GetSlotList, return f->C_GetSlotList(CK_FALSE, a.slots, &a.count);),
        BROW(C_GetSlotInfo, return f->C_GetSlotInfo(1, &a.slot_info);),
        BROW(C_GetTokenInfo, return f->C_GetTokenInfo(1, &a.token_info);),
        BROW(C_GetMechanismList, a.count = 64; return f->C_GetMechanismList(1, a.mechs, &a.count);),
        BROW(C_GetMechanismInfo, return f->C_GetMechanismInfo(1, CKM_SHA256, &a.mech_info);),
        BROW(C_InitToken, return f->C_InitToken(1, a.pin, 8, a.label);),
        BROW(C_InitPIN, return f->C_InitPIN(a.session, a.pin, 8);),
        BROW(C_SetPIN, return f->C_SetPIN(a.session, a.pin, 8, a.pin, 8);),
        BROW(C_OpenSession,
             return f->C_OpenSession(1, CKF_SERIAL_SESSION, nullptr, nullptr, &a.new_session);),
        BROW(C_CloseSession, return f->C_CloseSession(a.session);),
        BROW(C_CloseAllSessions, return f->C_CloseAllSessions(1);),
        BROW(C_GetSessionInfo, return f->C_GetSessionInfo(a.session, &a.session_info);),
        BROW(C_GetOperationState, return f->C_GetOperationState(a.session, a.out, a.L());),
        BROW(C_SetOperationState, return f->C_SetOperationState(a.session, a.in, 16, 0, 0);),
        BROW(C_Login, return f->C_Login(a.session, CKU_USER, a.pin, 8);),
        BROW(C_Logout, return f->C_Logout(a.session);),
        BROW(C_CreateObject, return f->C_CreateObject(a.session, &a.attr, 1, &a.new_object);),
        BROW(C_CopyObject,
             return f->C_CopyObject(a.session, a.object, &a.attr, 1, &a.new_object);),
        BROW(C_DestroyObject, return f->C_DestroyObject(a.session, a.object);),
        BROW(C_GetObjectSize, return f->C_GetObjectSize(a.session, a.object, &a.len);),
        BROW(C_GetAttributeValue, return f->C_GetAttributeValue(a.session, a.object, &a.attr, 1);),
        BROW(C_SetAttributeValue, return f->C_SetAttributeValue(a.session, a.object, &a.attr, 1);),
        BROW(C_FindObjectsInit, return f->C_FindObjectsInit(a.session, &a.attr, 1);),
        BROW(C_FindObjects, return f->C_FindObjects(a.session, a.objects, 8, &a.count);),
        BROW(C_FindObjectsFinal, return f->C_FindObjectsFinal(a.session);),
        BROW(C_EncryptInit, return f->C_EncryptInit(a.session, &a.mech, a.object);),
        BROW(C_Encrypt, return f->C_Encrypt(a.session, a.in, 16, a.out, a.L());),
        BROW(C_EncryptUpdate, return f->C_EncryptUpdate(a.session, a.in, 16, a.out, a.L());),
        BROW(C_EncryptFinal, return f->C_EncryptFinal(a.session, a.out, a.L());),
        BROW(C_DecryptInit, return f->C_DecryptInit(a.session, &a.mech, a.object);),
        BROW(C_Decrypt, return f->C_Decrypt(a.session, a.in, 16, a.out, a.L());),
        BROW(C_DecryptUpdate, return f->C_DecryptUpdate(a.session, a.in, 16, a.out, a.L());),
        BROW(C_DecryptFinal, return f->C_DecryptFinal(a.session, a.out, a.L());),
        BROW(C_DigestInit, return f->C_DigestInit(a.session, &a.mech);),
        BROW(C_Digest, return f->C_Digest(a.session, a.in, 16, a.out, a.L());),
        BROW(C_DigestUpdate, return f->C_DigestUpdate(a.session, a.in, 16);),
        BROW(C_DigestKey, return f->C_DigestKey(a.session, a.object);),
        BROW(C_DigestFinal, return f->C_DigestFinal(a.session, a.out, a.L());),
        BROW(C_SignInit, return f->C_SignInit(a.session, &a.mech, a.object);),
        BROW(C_Sign, return f->C_Sign(a.session, a.in, 16, a.out, a.L());),
        BROW(C_SignUpdate, return f->C_SignUpdate(a.session, a.in, 16);),
        BROW(C_SignFinal, return f->C_SignFinal(a.session, a.out, a.L());),
        BROW(C_SignRecoverInit, return f->C_SignRecoverInit(a.session, &a.mech, a.object);),
        BROW(C_SignRecover, return f->C_SignRecover(a.session, a.in, 16, a.out, a.L());),
        BROW(C_VerifyInit, return f->C_VerifyInit(a.session, &a.mech, a.object);),
        BROW(C_Verify, return f->C_Verify(a.session, a.in, 16, a.out, 32);),
        BROW(C_VerifyUpdate, return f->C_VerifyUpdate(a.session, a.in, 16);),
        BROW(C_VerifyFinal, return f->C_VerifyFinal(a.session, a.out, 32);),
        BROW(C_VerifyRecoverInit, return f->C_VerifyRecoverInit(a.session, &a.mech, a.object);),
        BROW(C_VerifyRecover, return f->C_VerifyRecover(a.session, a.in, 32, a.out, a.L());),
        BROW(C_DigestEncryptUpdate,
             return f->C_DigestEncryptUpdate(a.session, a.in, 16, a.out, a.L());),
        BROW(C_DecryptDigestUpdate,
             return f->C_DecryptDigestUpdate(a.session, a.in, 16, a.out, a.L());),
        BROW(C_SignEncryptUpdate,
             return f->C_SignEncryptUpdate(a.session, a.in, 16, a.out, a.L());),
        BROW(C_DecryptVerifyUpdate,
             return f->C_DecryptVerifyUpdate(a.session, a.in, 16, a.out, a.L());),
        BROW(C_GenerateKey,
             return f->C_GenerateKey(a.session, &a.mech, &a.attr, 1, &a.new_object);),
        BROW(C_GenerateKeyPair, return f->C_GenerateKeyPair(a.session, &a.mech, &a.attr, 1,
                                                             &a.attr, 1, &a.new_object,
                                                             &a.new_object2);),
        BROW(C_WrapKey, return f->C_WrapKey(a.session, &a.mech, a.object, a.object, a.out,
                                            a.L());),
        BROW(C_UnwrapKey, return f->C_UnwrapKey(a.session, &a.mech, a.object, a.in, 40, &a.attr,
                                                1, &a.new_object);),
        BROW(C_DeriveKey,
             return f->C_DeriveKey(a.session, &a.mech, a.object, &a.attr, 1, &a.new_object);),
        BROW(C_SeedRandom, return f->C_SeedRandom(a.session, a.in, 16);),
        BROW(C_GenerateRandom, return f->C_GenerateRandom(a.session, a.out, 16);),
        BROW(C_GetFunctionStatus, return f->C_GetFunctionStatus(a.session);),
        BROW(C_CancelFunction, return f->C_CancelFunction(a.session);),
        BROW(C_WaitForSlotEvent,
             return f->C_WaitForSlotEvent(CKF_DONT_BLOCK, &a.event_slot, nullptr);),
    };
    return rows;
}

// A configured environment (UKEY_CONF, SoftHSM2 token), module not initialised.
class EnvSuite : public testing::Test {
protected:
    void SetUp() override { env_ = std::make_unique<TestEnv>(); }
    void TearDown() override { env_.reset(); }
    std::unique_ptr<TestEnv> env_;
};

class BeforeInit : public EnvSuite,
                   public testing::WithParamInterface<std::tuple<BeforeInitRow, bool>> {};

// v2.40 "Function return values": CKR_CRYPTOKI_NOT_INITIALIZED "can be
// returned by any function other than C_Initialize and C_GetFunctionList";
// C_GetFunctionList works before C_Initialize (C_GetFunctionList, C_Initialize).
TEST_P(BeforeInit, ReturnsNotInitialized)
{
    const auto& [row, via_exports] = GetParam();
    Module m(module_path());
    CK_FUNCTION_LIST exports = exported_functions(m);
    CK_FUNCTION_LIST* f = via_exports ? &exports : m.fl();
    ASSERT_NE(function_at(f, row.index), nullptr) << row.fn << " missing";
    Scratch a;
    CK_RV rv = row.call(f, a);
    if (row.index == UKEYTEST_FN_INDEX(C_Initialize)) {
        EXPECT_RV(CKR_OK, rv);
        if (rv == CKR_OK) {
            EXPECT_RV(CKR_OK, m.fl()->C_Finalize(nullptr));
        }
    } else if (row.index == UKEYTEST_FN_INDEX(C_GetFunctionList)) {
        EXPECT_RV(CKR_OK, rv);
        EXPECT_EQ(a.list, m.fl()) << "C_GetFunctionList must return the same list every time";
    } else {
        EXPECT_RV(CKR_CRYPTOKI_NOT_INITIALIZED, rv);
    }
}

INSTANTIATE_TEST_SUITE_P(
    All, BeforeInit, testing::Combine(testing::ValuesIn(before_init_rows()), testing::Bool()),
    [](const testing::TestParamInfo<BeforeInit::ParamType>& i) {
        return test_name(std::string(std::get<0>(i.param).fn) +
                         (std::get<1>(i.param) ? "_export" : "_list"));
    });

TEST(BeforeInitTable, CoversAll68FunctionsOnce)
{
    std::multiset<size_t> seen;
    for (const auto& r : before_init_rows())
        seen.insert(r.index);
    EXPECT_EQ(before_init_rows().size(), kV240FunctionCount);
    for (const auto& f : kV240Functions)
        EXPECT_EQ(seen.count(f.index), 1u) << f.name;
}

TEST(Exports, All68FunctionsAndInterfaceDiscovery)
{
    Module m(module_path());
    for (const auto& f : kV240Functions) {
        EXPECT_NE(m.symbol(f.name), nullptr) << f.name << " not exported";
        EXPECT_NE(function_at(m.fl(), f.index), nullptr) << f.name << " NULL in function list";
    }
    EXPECT_NE(m.symbol("C_GetInterfaceList"), nullptr);
    EXPECT_NE(m.symbol("C_GetInterface"), nullptr);
    EXPECT_EQ(m.fl()->version.major, 2);
    EXPECT_EQ(m.fl()->version.minor, 40);
}

// Every entry of the function list, and every export, is code of the module
// itself. (An entry bound by the dynamic linker to a same-named symbol of
// another library - symbol interposition - would send the application's
// calls to that library.)
void expect_all_entries_in_module(Module& m)
{
    Dl_info self{};
    ASSERT_NE(dladdr(m.fl(), &self), 0);
    const CK_FUNCTION_LIST exports = exported_functions(m);
    const CK_FUNCTION_LIST* lists[] = {m.fl(), &exports};
    for (const auto& f : kV240Functions)
        for (const CK_FUNCTION_LIST* list : lists) {
            Dl_info where{};
            void* p = function_at(list, f.index);
            ASSERT_NE(dladdr(p, &where), 0) << f.name;
            EXPECT_EQ(where.dli_fbase, self.dli_fbase)
                << f.name << (list == m.fl() ? " in the function list" : " (exported symbol)")
                << " points into " << (where.dli_fname ? where.dli_fname : "?") << ", not "
                << self.dli_fname;
        }
    CK_FUNCTION_LIST* again = nullptr;
    EXPECT_RV(CKR_OK, m.fl()->C_GetFunctionList(&again));
    EXPECT_EQ(again, m.fl()) << "fl->C_GetFunctionList returned another library's list";
}

TEST(Exports, FunctionListPointsIntoTheModule)
{
    Module m(module_path());
    expect_all_entries_in_module(m);
}

const char kGlobalLibVariable[] = "UKEYTEST_GLOBAL_LIBRARY";

// Helper for FunctionListImmuneToSymbolInterposition (run in a new process).
TEST(ExportsHelper, DISABLED_LoadAfterGlobalLibrary)
{
    const char* lib = std::getenv(kGlobalLibVariable);
    if (!lib)
        GTEST_SKIP() << "only run by Exports.FunctionListImmuneToSymbolInterposition";
    ASSERT_NE(dlopen(lib, RTLD_NOW | RTLD_GLOBAL), nullptr) << dlerror();
    Module m(module_path());
    expect_all_entries_in_module(m);
}

// An application that already has a library exporting C_* names in its
// global symbol scope - linked against libp11-kit (exports C_GetFunctionList)
// or with another PKCS#11 module loaded RTLD_GLOBAL - then dlopen()s ukey:
// ukey's function list must still lead to ukey.
TEST(Exports, FunctionListImmuneToSymbolInterposition)
{
    for (std::string lib : {std::string("libp11-kit.so.0"), std::string(softhsm2_module_path())}) {
        SCOPED_TRACE("global: " + lib);
        ScopedEnvVar var(kGlobalLibVariable, lib);
        auto r = run_program({self_exe(),
                              "--gtest_filter=ExportsHelper.DISABLED_LoadAfterGlobalLibrary",
                              "--gtest_also_run_disabled_tests"},
                             60s);
        EXPECT_TRUE(r.ok()) << r.describe();
    }
}

// C_WaitForSlotEvent without CKF_DONT_BLOCK must not block before C_Initialize.
TEST_F(EnvSuite, WaitForSlotEventBlockingBeforeInitDoesNotHang)
{
    Module m(module_path());
    auto r = run_in_child(
        [&](ChildReport& rep) {
            CK_SLOT_ID slot = 0;
            rep.expect_rv(CKR_CRYPTOKI_NOT_INITIALIZED,
                          m.fl()->C_WaitForSlotEvent(0, &slot, nullptr),
                          "C_WaitForSlotEvent(0) before C_Initialize");
        },
        10s);
    EXPECT_TRUE(r.ok()) << r.describe();
}

// ============================================================================
// Shared, logged-in state for tables (b) and (c)
// ============================================================================

const char kEcLabel[] = "robust-ec";
const char kAesLabel[] = "robust-aes";
const char kHmacLabel[] = "robust-hmac";
const char kDataLabel[] = "robust-data";

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
    CK_SESSION_HANDLE encrypting()
    {
        auto s = fresh();
        must(fl->C_EncryptInit(s, &aes_cbc, aes), "C_EncryptInit");
        return s;
    }
    CK_SESSION_HANDLE decrypting()
    {
        auto s = fresh();
        must(fl->C_DecryptInit(s, &aes_cbc, aes), "C_DecryptInit");
        return s;
    }
    CK_SESSION_HANDLE digesting()
    {
        auto s = fresh();
        must(fl->C_DigestInit(s, &sha256), "C_DigestInit");
        return s;
    }
    CK_SESSION_HANDLE signing()
    {
        auto s = fresh();
        must(fl->C_SignInit(s, &hmac_mech, hmac), "C_SignInit(HMAC)");
        return s;
    }
    CK_SESSION_HANDLE verifying()
    {
        auto s = fresh();
        must(fl->C_VerifyInit(s, &hmac_mech, hmac), "C_VerifyInit(HMAC)");
        return s;
    }
    CK_SESSION_HANDLE finding()
    {
        auto s = fresh();
        must(fl->C_FindObjectsInit(s, find_tmpl.data(), find_tmpl.size()), "C_FindObjectsInit");
        return s;
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

// The fixture itself works: the operations the rows rely on succeed.
TEST_F(LoggedInSuite, FixtureSanity)
{
    auto& c = *ctx_;
    auto s = c.signing();
    EXPECT_RV(CKR_OK, c.fl->C_Sign(s, c.in, 16, c.out, c.L()));
    s = c.encrypting();
    EXPECT_RV(CKR_OK, c.fl->C_Encrypt(s, c.in, 16, c.out, c.L()));
    s = c.digesting();
    EXPECT_RV(CKR_OK, c.fl->C_DigestKey(s, c.aes));
    s = c.fresh();
    EXPECT_RV(CKR_OK, c.fl->C_WrapKey(s, &c.aes_wrap, c.aes, c.hmac, c.out, c.L()));
    EXPECT_RV(CKR_OK, c.fl->C_DeriveKey(s, &c.derive, c.aes, c.derive_tmpl.data(),
                                        c.derive_tmpl.size(), &c.h1));
    auto sig = sign(c.fl, s, c.ec, {1, 2, 3});
    EXPECT_TRUE(verify(public_key(c.fl, s, c.ec).get(), KeyKind::EcP256, {1, 2, 3}, sig));
}

// ============================================================================
// (b) NULL pointer arguments -> CKR_ARGUMENTS_BAD
// ============================================================================

struct NullRow {
    const char* fn;
    size_t index;
    const char* variant;  // which argument is NULL
    std::function<CK_RV(Ctx&)> call;
};

void PrintTo(const NullRow& r, std::ostream* os)
{
    *os << r.fn << " with NULL " << r.variant;
}

#define NROW(fn, variant, ...)                       \
    NullRow{#fn, UKEYTEST_FN_INDEX(fn), variant,     \
            []([[maybe_unused]] Ctx& c) -> CK_RV { __VA_ARGS__ }}

const std::vector<NullRow>& null_rows()
{
    static const std::vector<NullRow> rows = {
        NROW(C_Finalize, "pReserved_not_NULL", return c.fl->C_Finalize(c.out);),
        NROW(C_GetInfo, "pInfo", return c.fl->C_GetInfo(nullptr);),
        NROW(C_GetFunctionList, "ppFunctionList", return c.fl->C_GetFunctionList(nullptr);),
        NROW(C_GetSlotList, "pulCount", return c.fl->C_GetSlotList(CK_TRUE, nullptr, nullptr);),
        NROW(C_GetSlotList, "pulCount_with_list",
             return c.fl->C_GetSlotList(CK_FALSE, c.slots, nullptr);),
        NROW(C_GetSlotInfo, "pInfo", return c.fl->C_GetSlotInfo(c.slot, nullptr);),
        NROW(C_GetTokenInfo, "pInfo", return c.fl->C_GetTokenInfo(c.slot, nullptr);),
        NROW(C_WaitForSlotEvent, "pSlot",
             return c.fl->C_WaitForSlotEvent(CKF_DONT_BLOCK, nullptr, nullptr);),
        NROW(C_GetMechanismList, "pulCount",
             return c.fl->C_GetMechanismList(c.slot, nullptr, nullptr);),
        NROW(C_GetMechanismList, "pulCount_with_list",
             return c.fl->C_GetMechanismList(c.slot, c.mechs, nullptr);),
        NROW(C_GetMechanismInfo, "pInfo",
             return c.fl->C_GetMechanismInfo(c.slot, CKM_SHA256, nullptr);),
        // No session may be open for C_InitToken (else CKR_SESSION_EXISTS).
        NROW(C_InitToken, "pLabel", c.must(c.fl->C_CloseAllSessions(c.slot), "C_CloseAllSessions");
             return c.fl->C_InitToken(c.slot, c.pin(c.so_pin), c.so_pin.size(), nullptr);),
        // C_InitPIN needs an SO session (else CKR_USER_NOT_LOGGED_IN).
        NROW(C_InitPIN, "pPin", c.must(c.fl->C_Logout(c.session), "C_Logout");
             c.must(c.fl->C_Login(c.session, CKU_SO, c.pin(c.so_pin), c.so_pin.size()),
                    "C_Login(SO)");
             return c.fl->C_InitPIN(c.session, nullptr, 8);),
        NROW(C_SetPIN, "pOldPin", return c.fl->C_SetPIN(c.session, nullptr, 8,
                                                        c.pin(c.user_pin), c.user_pin.size());),
        NROW(C_SetPIN, "pNewPin", return c.fl->C_SetPIN(c.session, c.pin(c.user_pin),
                                                        c.user_pin.size(), nullptr, 8);),
        NROW(C_OpenSession, "phSession",
             return c.fl->C_OpenSession(c.slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, nullptr,
                                        nullptr, nullptr);),
        NROW(C_GetSessionInfo, "pInfo", return c.fl->C_GetSessionInfo(c.session, nullptr);),
        NROW(C_GetOperationState, "pulOperationStateLen",
             return c.fl->C_GetOperationState(c.digesting(), nullptr, nullptr);),
        NROW(C_SetOperationState, "pOperationState",
             return c.fl->C_SetOperationState(c.fresh(), nullptr, 16, 0, 0);),
        NROW(C_Login, "pPin", c.must(c.fl->C_Logout(c.session), "C_Logout");
             return c.fl->C_Login(c.session, CKU_USER, nullptr, 8);),
        NROW(C_CreateObject, "pTemplate",
             return c.fl->C_CreateObject(c.session, nullptr, 4, &c.h1);),
        NROW(C_CreateObject, "phObject",
             return c.fl->C_CreateObject(c.session, c.data_tmpl.data(), c.data_tmpl.size(),
                                         nullptr);),
        NROW(C_CopyObject, "pTemplate",
             return c.fl->C_CopyObject(c.session, c.data, nullptr, 1, &c.h1);),
        NROW(C_CopyObject, "phNewObject",
             return c.fl->C_CopyObject(c.session, c.data, c.label_tmpl.data(), 1, nullptr);),
        NROW(C_GetObjectSize, "pulSize",
             return c.fl->C_GetObjectSize(c.session, c.data, nullptr);),
        NROW(C_GetAttributeValue, "pTemplate",
             return c.fl->C_GetAttributeValue(c.session, c.data, nullptr, 1);),
        NROW(C_SetAttributeValue, "pTemplate",
             return c.fl->C_SetAttributeValue(c.session, c.data, nullptr, 1);),
        NROW(C_FindObjectsInit, "pTemplate",
             return c.fl->C_FindObjectsInit(c.fresh(), nullptr, 1);),
        NROW(C_FindObjects, "phObject",
             return c.fl->C_FindObjects(c.finding(), nullptr, 8, &c.ul);),
        NROW(C_FindObjects, "pulObjectCount",
             return c.fl->C_FindObjects(c.finding(), c.objs, 8, nullptr);),
        NROW(C_EncryptInit, "pMechanism", return c.fl->C_EncryptInit(c.fresh(), nullptr, c.aes);),
        NROW(C_Encrypt, "pData",
             return c.fl->C_Encrypt(c.encrypting(), nullptr, 16, c.out, c.L());),
        NROW(C_Encrypt, "pulEncryptedDataLen",
             return c.fl->C_Encrypt(c.encrypting(), c.in, 16, c.out, nullptr);),
        NROW(C_EncryptUpdate, "pPart",
             return c.fl->C_EncryptUpdate(c.encrypting(), nullptr, 16, c.out, c.L());),
        NROW(C_EncryptUpdate, "pulEncryptedPartLen",
             return c.fl->C_EncryptUpdate(c.encrypting(), c.in, 16, c.out, nullptr);),
        NROW(C_EncryptFinal, "pulLastEncryptedPartLen",
             return c.fl->C_EncryptFinal(c.encrypting(), c.out, nullptr);),
        NROW(C_DecryptInit, "pMechanism", return c.fl->C_DecryptInit(c.fresh(), nullptr, c.aes);),
        NROW(C_Decrypt, "pEncryptedData",
             return c.fl->C_Decrypt(c.decrypting(), nullptr, 16, c.out, c.L());),
        NROW(C_Decrypt, "pulDataLen",
             return c.fl->C_Decrypt(c.decrypting(), c.in, 16, c.out, nullptr);),
        NROW(C_DecryptUpdate, "pEncryptedPart",
             return c.fl->C_DecryptUpdate(c.decrypting(), nullptr, 16, c.out, c.L());),
        NROW(C_DecryptUpdate, "pulPartLen",
             return c.fl->C_DecryptUpdate(c.decrypting(), c.in, 16, c.out, nullptr);),
        NROW(C_DecryptFinal, "pulLastPartLen",
             return c.fl->C_DecryptFinal(c.decrypting(), c.out, nullptr);),
        NROW(C_DigestInit, "pMechanism", return c.fl->C_DigestInit(c.fresh(), nullptr);),
        NROW(C_Digest, "pData", return c.fl->C_Digest(c.digesting(), nullptr, 16, c.out, c.L());),
        NROW(C_Digest, "pulDigestLen",
             return c.fl->C_Digest(c.digesting(), c.in, 16, c.out, nullptr);),
        NROW(C_DigestUpdate, "pPart", return c.fl->C_DigestUpdate(c.digesting(), nullptr, 16);),
        NROW(C_DigestFinal, "pulDigestLen",
             return c.fl->C_DigestFinal(c.digesting(), c.out, nullptr);),
        NROW(C_SignInit, "pMechanism", return c.fl->C_SignInit(c.fresh(), nullptr, c.hmac);),
        NROW(C_Sign, "pData", return c.fl->C_Sign(c.signing(), nullptr, 16, c.out, c.L());),
        NROW(C_Sign, "pulSignatureLen",
             return c.fl->C_Sign(c.signing(), c.in, 16, c.out, nullptr);),
        NROW(C_SignUpdate, "pPart", return c.fl->C_SignUpdate(c.signing(), nullptr, 16);),
        NROW(C_SignFinal, "pulSignatureLen",
             return c.fl->C_SignFinal(c.signing(), c.out, nullptr);),
        NROW(C_SignRecoverInit, "pMechanism",
             return c.fl->C_SignRecoverInit(c.fresh(), nullptr, c.ec.priv);),
        NROW(C_SignRecover, "pData",
             return c.fl->C_SignRecover(c.fresh(), nullptr, 16, c.out, c.L());),
        NROW(C_SignRecover, "pulSignatureLen",
             return c.fl->C_SignRecover(c.fresh(), c.in, 16, c.out, nullptr);),
        NROW(C_VerifyInit, "pMechanism", return c.fl->C_VerifyInit(c.fresh(), nullptr, c.hmac);),
        NROW(C_Verify, "pData", return c.fl->C_Verify(c.verifying(), nullptr, 16, c.out, 32);),
        NROW(C_Verify, "pSignature",
             return c.fl->C_Verify(c.verifying(), c.in, 16, nullptr, 32);),
        NROW(C_VerifyUpdate, "pPart", return c.fl->C_VerifyUpdate(c.verifying(), nullptr, 16);),
        NROW(C_VerifyFinal, "pSignature",
             return c.fl->C_VerifyFinal(c.verifying(), nullptr, 32);),
        NROW(C_VerifyRecoverInit, "pMechanism",
             return c.fl->C_VerifyRecoverInit(c.fresh(), nullptr, c.ec.pub);),
        NROW(C_VerifyRecover, "pSignature",
             return c.fl->C_VerifyRecover(c.fresh(), nullptr, 64, c.out, c.L());),
        NROW(C_VerifyRecover, "pulDataLen",
             return c.fl->C_VerifyRecover(c.fresh(), c.in, 64, c.out, nullptr);),
        NROW(C_DigestEncryptUpdate, "pPart",
             return c.fl->C_DigestEncryptUpdate(c.dual(nullptr, 0, 0), nullptr, 16, c.out,
                                                c.L());),
        NROW(C_DigestEncryptUpdate, "pulEncryptedPartLen",
             return c.fl->C_DigestEncryptUpdate(c.dual(nullptr, 0, 0), c.in, 16, c.out,
                                                nullptr);),
        NROW(C_DecryptDigestUpdate, "pEncryptedPart",
             return c.fl->C_DecryptDigestUpdate(c.dual(nullptr, 0, 0), nullptr, 16, c.out,
                                                c.L());),
        NROW(C_DecryptDigestUpdate, "pulPartLen",
             return c.fl->C_DecryptDigestUpdate(c.dual(nullptr, 0, 0), c.in, 16, c.out,
                                                nullptr);),
        NROW(C_SignEncryptUpdate, "pPart",
             return c.fl->C_SignEncryptUpdate(c.dual(&c.hmac_mech, c.hmac, 1), nullptr, 16,
                                              c.out, c.L());),
        NROW(C_SignEncryptUpdate, "pulEncryptedPartLen",
             return c.fl->C_SignEncryptUpdate(c.dual(&c.hmac_mech, c.hmac, 1), c.in, 16, c.out,
                                              nullptr);),
        NROW(C_DecryptVerifyUpdate, "pEncryptedPart",
             return c.fl->C_DecryptVerifyUpdate(c.dual(&c.hmac_mech, c.hmac, 2), nullptr, 16,
                                                c.out, c.L());),
        NROW(C_DecryptVerifyUpdate, "pulPartLen",
             return c.fl->C_DecryptVerifyUpdate(c.dual(&c.hmac_mech, c.hmac, 2), c.in, 16,
                                                c.out, nullptr);),
        NROW(C_GenerateKey, "pMechanism",
             return c.fl->C_GenerateKey(c.session, nullptr, c.aes_tmpl.data(), c.aes_tmpl.size(),
                                        &c.h1);),
        NROW(C_GenerateKey, "pTemplate",
             return c.fl->C_GenerateKey(c.session, &c.aes_gen, nullptr, 2, &c.h1);),
        NROW(C_GenerateKey, "phKey",
             return c.fl->C_GenerateKey(c.session, &c.aes_gen, c.aes_tmpl.data(),
                                        c.aes_tmpl.size(), nullptr);),
        NROW(C_GenerateKeyPair, "pMechanism",
             return c.fl->C_GenerateKeyPair(c.session, nullptr, c.ec_pub_tmpl.data(),
                                            c.ec_pub_tmpl.size(), c.ec_priv_tmpl.data(),
                                            c.ec_priv_tmpl.size(), &c.h1, &c.h2);),
        NROW(C_GenerateKeyPair, "pPublicKeyTemplate",
             return c.fl->C_GenerateKeyPair(c.session, &c.ec_gen, nullptr, 2,
                                            c.ec_priv_tmpl.data(), c.ec_priv_tmpl.size(), &c.h1,
                                            &c.h2);),
        NROW(C_GenerateKeyPair, "pPrivateKeyTemplate",
             return c.fl->C_GenerateKeyPair(c.session, &c.ec_gen, c.ec_pub_tmpl.data(),
                                            c.ec_pub_tmpl.size(), nullptr, 2, &c.h1, &c.h2);),
        NROW(C_GenerateKeyPair, "phPublicKey",
             return c.fl->C_GenerateKeyPair(c.session, &c.ec_gen, c.ec_pub_tmpl.data(),
                                            c.ec_pub_tmpl.size(), c.ec_priv_tmpl.data(),
                                            c.ec_priv_tmpl.size(), nullptr, &c.h2);),
        NROW(C_GenerateKeyPair, "phPrivateKey",
             return c.fl->C_GenerateKeyPair(c.session, &c.ec_gen, c.ec_pub_tmpl.data(),
                                            c.ec_pub_tmpl.size(), c.ec_priv_tmpl.data(),
                                            c.ec_priv_tmpl.size(), &c.h1, nullptr);),
        NROW(C_WrapKey, "pMechanism",
             return c.fl->C_WrapKey(c.session, nullptr, c.aes, c.hmac, c.out, c.L());),
        NROW(C_WrapKey, "pulWrappedKeyLen",
             return c.fl->C_WrapKey(c.session, &c.aes_wrap, c.aes, c.hmac, c.out, nullptr);),
        NROW(C_UnwrapKey, "pMechanism",
             return c.fl->C_UnwrapKey(c.session, nullptr, c.aes, c.in, 40, c.unwrap_tmpl.data(),
                                      c.unwrap_tmpl.size(), &c.h1);),
        NROW(C_UnwrapKey, "pWrappedKey",
             return c.fl->C_UnwrapKey(c.session, &c.aes_wrap, c.aes, nullptr, 40,
                                      c.unwrap_tmpl.data(), c.unwrap_tmpl.size(), &c.h1);),
        NROW(C_UnwrapKey, "phKey",
             return c.fl->C_UnwrapKey(c.session, &c.aes_wrap, c.aes, c.in, 40,
                                      c.unwrap_tmpl.data(), c.unwrap_tmpl.size(), nullptr);),
        NROW(C_DeriveKey, "pMechanism",
             return c.fl->C_DeriveKey(c.session, nullptr, c.aes, c.derive_tmpl.data(),
                                      c.derive_tmpl.size(), &c.h1);),
        NROW(C_DeriveKey, "phKey",
             return c.fl->C_DeriveKey(c.session, &c.derive, c.aes, c.derive_tmpl.data(),
                                      c.derive_tmpl.size(), nullptr);),
        NROW(C_SeedRandom, "pSeed", return c.fl->C_SeedRandom(c.session, nullptr, 16);),
        NROW(C_GenerateRandom, "pRandomData",
             return c.fl->C_GenerateRandom(c.session, nullptr, 16);),
    };
    return rows;
}

// Functions without a pointer argument that must be non-NULL.
const std::set<std::string> kNoMandatoryPointer = {
    "C_Initialize",  // pInitArgs may be NULL; its contents are tested in InitArgs
    "C_CloseSession",  "C_CloseAllSessions",  "C_Logout",         "C_DestroyObject",
    "C_FindObjectsFinal", "C_DigestKey",      "C_GetFunctionStatus", "C_CancelFunction",
};

class NullPointer : public LoggedInSuite, public testing::WithParamInterface<NullRow> {};

// v2.40 "Function return values": CKR_ARGUMENTS_BAD "a generic error code
// which indicates that the arguments supplied to the Cryptoki function were
// in some way not appropriate". Every row uses otherwise valid handles (and
// an active operation where the call needs one), so the NULL pointer is the
// only thing wrong.
TEST_P(NullPointer, ReturnsArgumentsBad)
{
    const NullRow& row = GetParam();
    CK_RV rv = row.call(*ctx_);
    if (kMayBeUnsupported.count(row.fn))
        EXPECT_RV_IN(rv, CKR_ARGUMENTS_BAD, CKR_FUNCTION_NOT_SUPPORTED);
    else
        EXPECT_RV(CKR_ARGUMENTS_BAD, rv);
}

INSTANTIATE_TEST_SUITE_P(All, NullPointer, testing::ValuesIn(null_rows()),
                         [](const testing::TestParamInfo<NullRow>& i) {
                             return test_name(std::string(i.param.fn) + "_" + i.param.variant);
                         });

TEST(NullPointerTable, CoversEveryFunctionWithAMandatoryPointer)
{
    std::set<std::string> covered;
    for (const auto& r : null_rows())
        covered.insert(r.fn);
    size_t n = 0;
    for (const auto& f : kV240Functions) {
        bool in_table = covered.count(f.name) > 0;
        bool exempt = kNoMandatoryPointer.count(f.name) > 0;
        EXPECT_NE(in_table, exempt) << f.name << (in_table ? " both in table and exempt"
                                                            : " neither in table nor exempt");
        n += in_table || exempt;
    }
    EXPECT_EQ(n, kV240FunctionCount);
    EXPECT_EQ(covered.size() + kNoMandatoryPointer.size(), kV240FunctionCount);
}

// ============================================================================
// (c) Invalid handles
// ============================================================================

struct HandleRow {
    const char* fn;
    size_t index;
    const char* variant;
    CK_RV expected;
    std::function<CK_RV(Ctx&, CK_ULONG)> call;
    // A valid handle for the control call (nullptr: no control call, e.g.
    // because the call would be destructive).
    std::function<CK_ULONG(Ctx&)> valid;
};

void PrintTo(const HandleRow& r, std::ostream* os)
{
    *os << r.fn << (*r.variant ? " " : "") << r.variant << ", expecting " << rv_name(r.expected);
}

#define HROW_CALL(...) \
    []([[maybe_unused]] Ctx& c, [[maybe_unused]] CK_ULONG h) -> CK_RV { __VA_ARGS__ }
#define HROW(fn, variant, expected, valid_expr, ...)                            \
    HandleRow{#fn, UKEYTEST_FN_INDEX(fn), variant, expected, HROW_CALL(__VA_ARGS__), \
              [](Ctx & c) -> CK_ULONG { return valid_expr; }}
#define HROW_NO_CONTROL(fn, variant, expected, ...) \
    HandleRow{#fn, UKEYTEST_FN_INDEX(fn), variant, expected, HROW_CALL(__VA_ARGS__), nullptr}

std::string row_name(const testing::TestParamInfo<HandleRow>& i)
{
    return test_name(std::string(i.param.fn) +
                     (*i.param.variant ? std::string("_") + i.param.variant : ""));
}

// -- slots --------------------------------------------------------------------

const std::vector<HandleRow>& slot_rows()
{
    const CK_RV E = CKR_SLOT_ID_INVALID;
    static const std::vector<HandleRow> rows = {
        HROW(C_GetSlotInfo, "", E, c.slot, return c.fl->C_GetSlotInfo(h, &c.slot_info);),
        HROW(C_GetTokenInfo, "", E, c.slot, return c.fl->C_GetTokenInfo(h, &c.token_info);),
        HROW(C_GetMechanismList, "", E, c.slot,
             return c.fl->C_GetMechanismList(h, nullptr, c.L());),
        HROW(C_GetMechanismInfo, "", E, c.slot,
             return c.fl->C_GetMechanismInfo(h, CKM_SHA256, &c.mech_info);),
        // No control: C_InitToken on the real slot would (try to) wipe it.
        HROW_NO_CONTROL(C_InitToken, "", E,
                        return c.fl->C_InitToken(h, c.pin(c.so_pin), c.so_pin.size(), c.label);),
        HROW(C_OpenSession, "", E, c.slot,
             return c.fl->C_OpenSession(h, CKF_SERIAL_SESSION, nullptr, nullptr, &c.h1);),
        HROW(C_CloseAllSessions, "", E, c.slot, return c.fl->C_CloseAllSessions(h);),
    };
    return rows;
}

class InvalidSlot : public LoggedInSuite, public testing::WithParamInterface<HandleRow> {};

// v2.40 "Function return values": CKR_SLOT_ID_INVALID "The specified slot ID
// is not valid." Tried with an arbitrary ID and with SoftHSM2's own slot IDs
// (valid in the backend, but not ukey slot IDs unless they happen to coincide).
TEST_P(InvalidSlot, ReturnsSlotIdInvalid)
{
    const HandleRow& row = GetParam();
    auto& c = *ctx_;
    std::vector<CK_SLOT_ID> ours = slot_list(c.fl, false);
    std::vector<CK_SLOT_ID> candidates = {kBogusSlot};
    for (CK_SLOT_ID raw : raw_slots_)
        candidates.push_back(raw);
    size_t tried = 0;
    for (CK_SLOT_ID bad : candidates) {
        if (std::find(ours.begin(), ours.end(), bad) != ours.end())
            continue;  // coincides with a real ukey slot ID
        ++tried;
        SCOPED_TRACE("slot ID " + std::to_string(bad));
        EXPECT_RV(row.expected, row.call(c, bad));
    }
    EXPECT_GE(tried, 1u);
    if (row.valid) {
        EXPECT_NE(row.call(c, row.valid(c)), row.expected) << "control call with a valid slot";
    }
}

INSTANTIATE_TEST_SUITE_P(All, InvalidSlot, testing::ValuesIn(slot_rows()), row_name);

// -- sessions -----------------------------------------------------------------

const std::vector<HandleRow>& session_rows()
{
    const CK_RV E = CKR_SESSION_HANDLE_INVALID;
    static const std::vector<HandleRow> rows = {
        HROW(C_InitPIN, "", E, c.fresh(),
             return c.fl->C_InitPIN(h, c.pin(c.user_pin), c.user_pin.size());),
        HROW(C_SetPIN, "", E, c.fresh(),
             return c.fl->C_SetPIN(h, c.pin(c.user_pin), c.user_pin.size(), c.pin(c.user_pin),
                                   c.user_pin.size());),
        HROW(C_CloseSession, "", E, c.fresh(), return c.fl->C_CloseSession(h);),
        HROW(C_GetSessionInfo, "", E, c.fresh(),
             return c.fl->C_GetSessionInfo(h, &c.session_info);),
        HROW(C_GetOperationState, "", E, c.fresh(),
             return c.fl->C_GetOperationState(h, nullptr, c.L());),
        HROW(C_SetOperationState, "", E, c.fresh(),
             return c.fl->C_SetOperationState(h, c.in, 16, 0, 0);),
        HROW(C_Login, "", E, c.fresh(),
             return c.fl->C_Login(h, CKU_USER, c.pin(c.user_pin), c.user_pin.size());),
        HROW(C_Logout, "", E, c.fresh(), return c.fl->C_Logout(h);),
        HROW(C_CreateObject, "", E, c.fresh(),
             return c.fl->C_CreateObject(h, c.data_tmpl.data(), c.data_tmpl.size(), &c.h1);),
        HROW(C_CopyObject, "", E, c.fresh(),
             return c.fl->C_CopyObject(h, c.data, c.label_tmpl.data(), 1, &c.h1);),
        HROW(C_DestroyObject, "", E, c.fresh(),
             return c.fl->C_DestroyObject(h, c.session_object());),
        HROW(C_GetObjectSize, "", E, c.fresh(),
             return c.fl->C_GetObjectSize(h, c.data, &c.ul);),
        HROW(C_GetAttributeValue, "", E, c.fresh(),
             c.get_label_tmpl[0].ulValueLen = sizeof c.out2;
             return c.fl->C_GetAttributeValue(h, c.data, c.get_label_tmpl.data(), 1);),
        HROW(C_SetAttributeValue, "", E, c.fresh(),
             return c.fl->C_SetAttributeValue(h, c.session_object(), c.label_tmpl.data(), 1);),
        HROW(C_FindObjectsInit, "", E, c.fresh(),
             return c.fl->C_FindObjectsInit(h, c.find_tmpl.data(), 1);),
        HROW(C_FindObjects, "", E, c.finding(),
             return c.fl->C_FindObjects(h, c.objs, 8, &c.ul);),
        HROW(C_FindObjectsFinal, "", E, c.finding(), return c.fl->C_FindObjectsFinal(h);),
        HROW(C_EncryptInit, "", E, c.fresh(),
             return c.fl->C_EncryptInit(h, &c.aes_cbc, c.aes);),
        HROW(C_Encrypt, "", E, c.encrypting(),
             return c.fl->C_Encrypt(h, c.in, 16, c.out, c.L());),
        HROW(C_EncryptUpdate, "", E, c.encrypting(),
             return c.fl->C_EncryptUpdate(h, c.in, 16, c.out, c.L());),
        HROW(C_EncryptFinal, "", E, c.encrypting(),
             return c.fl->C_EncryptFinal(h, c.out, c.L());),
        HROW(C_DecryptInit, "", E, c.fresh(),
             return c.fl->C_DecryptInit(h, &c.aes_cbc, c.aes);),
        HROW(C_Decrypt, "", E, c.decrypting(),
             return c.fl->C_Decrypt(h, c.in, 16, c.out, c.L());),
        HROW(C_DecryptUpdate, "", E, c.decrypting(),
             return c.fl->C_DecryptUpdate(h, c.in, 16, c.out, c.L());),
        HROW(C_DecryptFinal, "", E, c.decrypting(),
             return c.fl->C_DecryptFinal(h, c.out, c.L());),
        HROW(C_DigestInit, "", E, c.fresh(), return c.fl->C_DigestInit(h, &c.sha256);),
        HROW(C_Digest, "", E, c.digesting(), return c.fl->C_Digest(h, c.in, 16, c.out, c.L());),
        HROW(C_DigestUpdate, "", E, c.digesting(), return c.fl->C_DigestUpdate(h, c.in, 16);),
        HROW(C_DigestKey, "", E, c.digesting(), return c.fl->C_DigestKey(h, c.aes);),
        HROW(C_DigestFinal, "", E, c.digesting(), return c.fl->C_DigestFinal(h, c.out, c.L());),
        HROW(C_SignInit, "", E, c.fresh(), return c.fl->C_SignInit(h, &c.hmac_mech, c.hmac);),
        HROW(C_Sign, "", E, c.signing(), return c.fl->C_Sign(h, c.in, 16, c.out, c.L());),
        HROW(C_SignUpdate, "", E, c.signing(), return c.fl->C_SignUpdate(h, c.in, 16);),
        HROW(C_SignFinal, "", E, c.signing(), return c.fl->C_SignFinal(h, c.out, c.L());),
        HROW(C_SignRecoverInit, "", E, c.fresh(),
             return c.fl->C_SignRecoverInit(h, &c.ecdsa, c.ec.priv);),
        HROW(C_SignRecover, "", E, c.fresh(),
             return c.fl->C_SignRecover(h, c.in, 16, c.out, c.L());),
        HROW(C_VerifyInit, "", E, c.fresh(),
             return c.fl->C_VerifyInit(h, &c.hmac_mech, c.hmac);),
        HROW(C_Verify, "", E, c.verifying(), return c.fl->C_Verify(h, c.in, 16, c.out, 32);),
        HROW(C_VerifyUpdate, "", E, c.verifying(), return c.fl->C_VerifyUpdate(h, c.in, 16);),
        HROW(C_VerifyFinal, "", E, c.verifying(), return c.fl->C_VerifyFinal(h, c.out, 32);),
        HROW(C_VerifyRecoverInit, "", E, c.fresh(),
             return c.fl->C_VerifyRecoverInit(h, &c.ecdsa, c.ec.pub);),
        HROW(C_VerifyRecover, "", E, c.fresh(),
             return c.fl->C_VerifyRecover(h, c.in, 64, c.out, c.L());),
        HROW(C_DigestEncryptUpdate, "", E, c.fresh(),
             return c.fl->C_DigestEncryptUpdate(h, c.in, 16, c.out, c.L());),
        HROW(C_DecryptDigestUpdate, "", E, c.fresh(),
             return c.fl->C_DecryptDigestUpdate(h, c.in, 16, c.out, c.L());),
        HROW(C_SignEncryptUpdate, "", E, c.fresh(),
             return c.fl->C_SignEncryptUpdate(h, c.in, 16, c.out, c.L());),
        HROW(C_DecryptVerifyUpdate, "", E, c.fresh(),
             return c.fl->C_DecryptVerifyUpdate(h, c.in, 16, c.out, c.L());),
        HROW(C_GenerateKey, "", E, c.fresh(),
             return c.fl->C_GenerateKey(h, &c.aes_gen, c.aes_tmpl.data(), c.aes_tmpl.size(),
                                        &c.h1);),
        HROW(C_GenerateKeyPair, "", E, c.fresh(),
             return c.fl->C_GenerateKeyPair(h, &c.ec_gen, c.ec_pub_tmpl.data(),
                                            c.ec_pub_tmpl.size(), c.ec_priv_tmpl.data(),
                                            c.ec_priv_tmpl.size(), &c.h1, &c.h2);),
        HROW(C_WrapKey, "", E, c.fresh(),
             return c.fl->C_WrapKey(h, &c.aes_wrap, c.aes, c.hmac, c.out, c.L());),
        HROW(C_UnwrapKey, "", E, c.fresh(),
             return c.fl->C_UnwrapKey(h, &c.aes_wrap, c.aes, c.in, 40, c.unwrap_tmpl.data(),
                                      c.unwrap_tmpl.size(), &c.h1);),
        HROW(C_DeriveKey, "", E, c.fresh(),
             return c.fl->C_DeriveKey(h, &c.derive, c.aes, c.derive_tmpl.data(),
                                      c.derive_tmpl.size(), &c.h1);),
        HROW(C_SeedRandom, "", E, c.fresh(), return c.fl->C_SeedRandom(h, c.in, 16);),
        HROW(C_GenerateRandom, "", E, c.fresh(), return c.fl->C_GenerateRandom(h, c.out, 16);),
        HROW(C_GetFunctionStatus, "", E, c.fresh(), return c.fl->C_GetFunctionStatus(h);),
        HROW(C_CancelFunction, "", E, c.fresh(), return c.fl->C_CancelFunction(h);),
    };
    return rows;
}

// v2.40 "Function return values for functions that use a session handle":
// these are exactly the functions other than C_Initialize, C_Finalize,
// C_GetInfo, C_GetFunctionList, C_GetSlotList, C_GetSlotInfo, C_GetTokenInfo,
// C_WaitForSlotEvent, C_GetMechanismList, C_GetMechanismInfo, C_InitToken,
// C_OpenSession and C_CloseAllSessions.
const std::set<std::string> kNoSessionArgument = {
    "C_Initialize",       "C_Finalize",         "C_GetInfo",        "C_GetFunctionList",
    "C_GetSlotList",      "C_GetSlotInfo",      "C_GetTokenInfo",   "C_WaitForSlotEvent",
    "C_GetMechanismList", "C_GetMechanismInfo", "C_InitToken",      "C_OpenSession",
    "C_CloseAllSessions",
};

class InvalidSession : public LoggedInSuite, public testing::WithParamInterface<HandleRow> {};

// CKR_SESSION_HANDLE_INVALID: "The specified session handle was invalid at
// the time that the function was invoked." Tried with CK_INVALID_HANDLE (0),
// an arbitrary value and a handle the module handed out and then closed.
TEST_P(InvalidSession, ReturnsSessionHandleInvalid)
{
    const HandleRow& row = GetParam();
    auto& c = *ctx_;
    CK_SESSION_HANDLE closed = c.fresh();
    ASSERT_RV(CKR_OK, c.fl->C_CloseSession(closed));
    std::vector<std::pair<std::string, CK_SESSION_HANDLE>> candidates = {
        {"CK_INVALID_HANDLE", CK_INVALID_HANDLE},
        {"arbitrary", kBogusHandle},
        {"closed", closed},
    };
    for (const auto& [what, bad] : candidates) {
        if (bad == c.session)
            continue;
        SCOPED_TRACE(what + " session handle " + std::to_string(bad));
        CK_RV rv = row.call(c, bad);
        if (row.index == UKEYTEST_FN_INDEX(C_GetFunctionStatus) ||
            row.index == UKEYTEST_FN_INDEX(C_CancelFunction))
            // Legacy functions which "should simply return the value
            // CKR_FUNCTION_NOT_PARALLEL" (v2.40 "Parallel function management").
            EXPECT_RV_IN(rv, CKR_SESSION_HANDLE_INVALID, CKR_FUNCTION_NOT_PARALLEL);
        else if (kMayBeUnsupported.count(row.fn))
            EXPECT_RV_IN(rv, CKR_SESSION_HANDLE_INVALID, CKR_FUNCTION_NOT_SUPPORTED);
        else
            EXPECT_RV(row.expected, rv);
    }
    EXPECT_NE(row.call(c, row.valid(c)), row.expected) << "control call with a valid session";
}

INSTANTIATE_TEST_SUITE_P(All, InvalidSession, testing::ValuesIn(session_rows()), row_name);

TEST(InvalidSessionTable, CoversAll55FunctionsTakingASession)
{
    std::set<std::string> covered;
    for (const auto& r : session_rows())
        EXPECT_TRUE(covered.insert(r.fn).second) << r.fn << " twice";
    for (const auto& f : kV240Functions)
        EXPECT_NE(covered.count(f.name) > 0, kNoSessionArgument.count(f.name) > 0) << f.name;
    EXPECT_EQ(covered.size(), 55u);
}

// -- objects ------------------------------------------------------------------

const std::vector<HandleRow>& object_rows()
{
    const CK_RV E = CKR_OBJECT_HANDLE_INVALID;
    static const std::vector<HandleRow> rows = {
        HROW(C_CopyObject, "", E, c.session_object(),
             return c.fl->C_CopyObject(c.session, h, c.label_tmpl.data(), 1, &c.h1);),
        HROW(C_DestroyObject, "", E, c.session_object(),
             return c.fl->C_DestroyObject(c.session, h);),
        HROW(C_GetObjectSize, "", E, c.session_object(),
             return c.fl->C_GetObjectSize(c.session, h, &c.ul);),
        HROW(C_GetAttributeValue, "", E, c.session_object(),
             c.get_label_tmpl[0].ulValueLen = sizeof c.out2;
             return c.fl->C_GetAttributeValue(c.session, h, c.get_label_tmpl.data(), 1);),
        HROW(C_SetAttributeValue, "", E, c.session_object(),
             return c.fl->C_SetAttributeValue(c.session, h, c.label_tmpl.data(), 1);),
    };
    return rows;
}

class InvalidObject : public LoggedInSuite, public testing::WithParamInterface<HandleRow> {};

// CKR_OBJECT_HANDLE_INVALID: "The specified object handle is not valid. We
// reiterate here that 0 is never a valid object handle."
TEST_P(InvalidObject, ReturnsObjectHandleInvalid)
{
    const HandleRow& row = GetParam();
    auto& c = *ctx_;
    CK_OBJECT_HANDLE destroyed = c.session_object();
    ASSERT_RV(CKR_OK, c.fl->C_DestroyObject(c.session, destroyed));
    std::vector<std::pair<std::string, CK_OBJECT_HANDLE>> candidates = {
        {"CK_INVALID_HANDLE", CK_INVALID_HANDLE},
        {"arbitrary", kBogusHandle},
        {"destroyed", destroyed},
    };
    for (const auto& [what, bad] : candidates) {
        SCOPED_TRACE(what + " object handle " + std::to_string(bad));
        EXPECT_RV(row.expected, row.call(c, bad));
    }
    EXPECT_RV(CKR_OK, row.call(c, row.valid(c))) << "control call with a valid object";
}

INSTANTIATE_TEST_SUITE_P(All, InvalidObject, testing::ValuesIn(object_rows()), row_name);

// -- keys ---------------------------------------------------------------------

const std::vector<HandleRow>& key_rows()
{
    const CK_RV E = CKR_KEY_HANDLE_INVALID;
    static const std::vector<HandleRow> rows = {
        HROW(C_EncryptInit, "", E, c.aes, return c.fl->C_EncryptInit(c.fresh(), &c.aes_cbc, h);),
        HROW(C_DecryptInit, "", E, c.aes, return c.fl->C_DecryptInit(c.fresh(), &c.aes_cbc, h);),
        HROW(C_DigestKey, "", E, c.aes, return c.fl->C_DigestKey(c.digesting(), h);),
        HROW(C_SignInit, "HMAC", E, c.hmac,
             return c.fl->C_SignInit(c.fresh(), &c.hmac_mech, h);),
        HROW(C_SignInit, "ECDSA", E, c.ec.priv, return c.fl->C_SignInit(c.fresh(), &c.ecdsa, h);),
        HROW(C_SignRecoverInit, "", E, c.ec.priv,
             return c.fl->C_SignRecoverInit(c.fresh(), &c.ecdsa, h);),
        HROW(C_VerifyInit, "HMAC", E, c.hmac,
             return c.fl->C_VerifyInit(c.fresh(), &c.hmac_mech, h);),
        HROW(C_VerifyInit, "ECDSA", E, c.ec.pub,
             return c.fl->C_VerifyInit(c.fresh(), &c.ecdsa, h);),
        HROW(C_VerifyRecoverInit, "", E, c.ec.pub,
             return c.fl->C_VerifyRecoverInit(c.fresh(), &c.ecdsa, h);),
        HROW(C_DeriveKey, "", E, c.aes,
             return c.fl->C_DeriveKey(c.fresh(), &c.derive, h, c.derive_tmpl.data(),
                                      c.derive_tmpl.size(), &c.h1);),
        HROW(C_WrapKey, "wrapping_key", CKR_WRAPPING_KEY_HANDLE_INVALID, c.aes,
             return c.fl->C_WrapKey(c.fresh(), &c.aes_wrap, h, c.hmac, c.out, c.L());),
        HROW(C_WrapKey, "key", E, c.hmac,
             return c.fl->C_WrapKey(c.fresh(), &c.aes_wrap, c.aes, h, c.out, c.L());),
        HROW(C_UnwrapKey, "unwrapping_key", CKR_UNWRAPPING_KEY_HANDLE_INVALID, c.aes,
             return c.fl->C_UnwrapKey(c.fresh(), &c.aes_wrap, h, c.in, 40, c.unwrap_tmpl.data(),
                                      c.unwrap_tmpl.size(), &c.h1);),
    };
    return rows;
}

class InvalidKey : public LoggedInSuite, public testing::WithParamInterface<HandleRow> {};

// CKR_KEY_HANDLE_INVALID "The specified key handle is not valid ... 0 is
// never a valid key handle"; C_WrapKey: CKR_WRAPPING_KEY_HANDLE_INVALID for
// hWrappingKey; C_UnwrapKey: CKR_UNWRAPPING_KEY_HANDLE_INVALID for hUnwrappingKey.
TEST_P(InvalidKey, ReturnsKeyHandleInvalid)
{
    const HandleRow& row = GetParam();
    auto& c = *ctx_;
    CK_OBJECT_HANDLE destroyed = generate_aes_key(c.fl, c.session, "robust-destroyed");
    ASSERT_RV(CKR_OK, c.fl->C_DestroyObject(c.session, destroyed));
    std::vector<std::pair<std::string, CK_OBJECT_HANDLE>> candidates = {
        {"CK_INVALID_HANDLE", CK_INVALID_HANDLE},
        {"arbitrary", kBogusHandle},
        {"destroyed", destroyed},
    };
    for (const auto& [what, bad] : candidates) {
        SCOPED_TRACE(what + " key handle " + std::to_string(bad));
        CK_RV rv = row.call(c, bad);
        if (kMayBeUnsupported.count(row.fn))
            EXPECT_RV_IN(rv, row.expected, CKR_FUNCTION_NOT_SUPPORTED);
        else
            EXPECT_RV(row.expected, rv);
    }
    EXPECT_NE(row.call(c, row.valid(c)), row.expected) << "control call with a valid key";
}

INSTANTIATE_TEST_SUITE_P(All, InvalidKey, testing::ValuesIn(key_rows()), row_name);

// ============================================================================
// (d) C_Initialize arguments, C_Finalize, configuration errors
// ============================================================================

class InitTest : public testing::Test {
protected:
    void SetUp() override
    {
        env_ = std::make_unique<TestEnv>();
        module_ = std::make_unique<Module>(module_path());
    }
    void TearDown() override
    {
        module_.reset();
        env_.reset();
    }
    CK_FUNCTION_LIST* fl() { return module_->fl(); }
    // The module is not initialised: a plain call says so.
    void expect_not_initialized()
    {
        CK_ULONG n = 0;
        EXPECT_RV(CKR_CRYPTOKI_NOT_INITIALIZED, fl()->C_GetSlotList(CK_FALSE, nullptr, &n))
            << "module must stay uninitialised after a failed C_Initialize";
    }
    // Initialised and usable: the test token is there.
    void expect_usable()
    {
        EXPECT_NO_THROW(slot_by_label(fl(), modtest::kDefaultToken.label));
    }
    std::unique_ptr<TestEnv> env_;
    std::unique_ptr<Module> module_;
};

// Application-supplied mutex callbacks that work (and count their use).
struct AppMutexes {
    static inline std::atomic<int> created{0}, destroyed{0}, locked{0}, unlocked{0};
    static CK_RV create(void** m)
    {
        if (!m)
            return CKR_ARGUMENTS_BAD;
        *m = new std::mutex;
        ++created;
        return CKR_OK;
    }
    static CK_RV destroy(void* m)
    {
        delete static_cast<std::mutex*>(m);
        ++destroyed;
        return CKR_OK;
    }
    static CK_RV lock(void* m)
    {
        static_cast<std::mutex*>(m)->lock();
        ++locked;
        return CKR_OK;
    }
    static CK_RV unlock(void* m)
    {
        static_cast<std::mutex*>(m)->unlock();
        ++unlocked;
        return CKR_OK;
    }
};

// C_Initialize: "pReserved ... must be NULL_PTR; if it is not, C_Initialize
// should return with the value CKR_ARGUMENTS_BAD".
TEST_F(InitTest, ReservedNotNullIsArgumentsBad)
{
    int dummy = 0;
    CK_C_INITIALIZE_ARGS args{};
    args.flags = CKF_OS_LOCKING_OK;
    args.pReserved = &dummy;
    EXPECT_RV(CKR_ARGUMENTS_BAD, module_->initialize(&args));
    expect_not_initialized();
    EXPECT_RV(CKR_OK, module_->initialize());
    expect_usable();
}

// C_Initialize: "If some, but not all, of the supplied function pointers to
// C_Initialize are non-NULL_PTR, then C_Initialize should return with the
// value CKR_ARGUMENTS_BAD." All 14 partial combinations, with and without
// CKF_OS_LOCKING_OK.
TEST_F(InitTest, PartialMutexCallbacksAreArgumentsBad)
{
    for (CK_FLAGS flags : {CK_FLAGS(0), CK_FLAGS(CKF_OS_LOCKING_OK)}) {
        for (unsigned mask = 1; mask < 15; ++mask) {
            CK_C_INITIALIZE_ARGS args{};
            args.flags = flags;
            if (mask & 1)
                args.CreateMutex = AppMutexes::create;
            if (mask & 2)
                args.DestroyMutex = AppMutexes::destroy;
            if (mask & 4)
                args.LockMutex = AppMutexes::lock;
            if (mask & 8)
                args.UnlockMutex = AppMutexes::unlock;
            SCOPED_TRACE("callback mask " + std::to_string(mask) + ", flags " +
                         std::to_string(flags));
            EXPECT_RV(CKR_ARGUMENTS_BAD, module_->initialize(&args));
            if (module_->initialized())
                module_->finalize();
            expect_not_initialized();
        }
    }
}

// All four callbacks, flags 0: the library must use them, or return
// CKR_CANT_LOCK if it cannot (C_Initialize, cases 3/4 of the threading options).
TEST_F(InitTest, AppMutexCallbacksWork)
{
    for (CK_FLAGS flags : {CK_FLAGS(0), CK_FLAGS(CKF_OS_LOCKING_OK)}) {
        SCOPED_TRACE("flags " + std::to_string(flags));
        CK_C_INITIALIZE_ARGS args{AppMutexes::create, AppMutexes::destroy, AppMutexes::lock,
                                  AppMutexes::unlock, flags, nullptr};
        CK_RV rv = module_->initialize(&args);
        if (flags == 0)
            EXPECT_RV_IN(rv, CKR_OK, CKR_CANT_LOCK);
        else
            EXPECT_RV(CKR_OK, rv);
        if (rv != CKR_OK)
            continue;
        // Exercise it from several threads.
        CK_SLOT_ID slot = slot_by_label(fl(), modtest::kDefaultToken.label);
        std::vector<std::thread> threads;
        std::atomic<int> errors{0};
        for (int t = 0; t < 4; ++t)
            threads.emplace_back([&] {
                for (int i = 0; i < 20; ++i) {
                    CK_SESSION_HANDLE s;
                    if (fl()->C_OpenSession(slot, CKF_SERIAL_SESSION, nullptr, nullptr, &s) !=
                            CKR_OK ||
                        fl()->C_CloseSession(s) != CKR_OK)
                        ++errors;
                }
            });
        for (auto& t : threads)
            t.join();
        EXPECT_EQ(errors, 0);
        EXPECT_RV(CKR_OK, module_->finalize());
        EXPECT_EQ(AppMutexes::locked.load(), AppMutexes::unlocked.load());
    }
}

TEST_F(InitTest, NullArgsAndCantCreateThreads)
{
    EXPECT_RV(CKR_OK, module_->initialize(nullptr));
    expect_usable();
    EXPECT_RV(CKR_OK, module_->finalize());

    CK_C_INITIALIZE_ARGS args{};
    args.flags = CKF_LIBRARY_CANT_CREATE_OS_THREADS | CKF_OS_LOCKING_OK;
    CK_RV rv = module_->initialize(&args);
    EXPECT_RV_IN(rv, CKR_OK, CKR_NEED_TO_CREATE_THREADS);
    if (rv == CKR_OK) {
        expect_usable();
        EXPECT_RV(CKR_OK, module_->finalize());
    }
}

// C_Initialize: CKR_CRYPTOKI_ALREADY_INITIALIZED on a second call; the first
// initialisation stays intact.
TEST_F(InitTest, SecondInitializeIsAlreadyInitialized)
{
    ASSERT_RV(CKR_OK, module_->initialize());
    EXPECT_RV(CKR_CRYPTOKI_ALREADY_INITIALIZED, fl()->C_Initialize(nullptr));
    CK_C_INITIALIZE_ARGS args{};
    args.flags = CKF_OS_LOCKING_OK;
    EXPECT_RV(CKR_CRYPTOKI_ALREADY_INITIALIZED, fl()->C_Initialize(&args));
    expect_usable();
}

// C_Finalize: non-NULL pReserved -> CKR_ARGUMENTS_BAD (and nothing is
// finalised); a second C_Finalize -> CKR_CRYPTOKI_NOT_INITIALIZED.
TEST_F(InitTest, FinalizeArguments)
{
    ASSERT_RV(CKR_OK, module_->initialize());
    int dummy = 0;
    EXPECT_RV(CKR_ARGUMENTS_BAD, fl()->C_Finalize(&dummy));
    expect_usable();
    EXPECT_RV(CKR_OK, module_->finalize());
    EXPECT_RV(CKR_CRYPTOKI_NOT_INITIALIZED, fl()->C_Finalize(nullptr));
}

TEST_F(InitTest, RepeatedInitializeFinalizeCycles)
{
    std::vector<CK_SLOT_ID> first;
    for (int i = 0; i < 5; ++i) {
        SCOPED_TRACE("cycle " + std::to_string(i));
        ASSERT_RV(CKR_OK, module_->initialize());
        auto slots = slot_list(fl(), true);
        if (i == 0)
            first = slots;
        EXPECT_EQ(slots, first);
        CK_SESSION_HANDLE s = open_session(fl(), slot_by_label(fl(), modtest::kDefaultToken.label));
        login(fl(), s, CKU_USER, modtest::kDefaultToken.user_pin);
        ASSERT_RV(CKR_OK, module_->finalize());
        expect_not_initialized();
    }
}

// After C_WaitForSlotEvent(CKF_DONT_BLOCK): CKR_NO_EVENT, or an event for a
// real slot (C_WaitForSlotEvent).
TEST_F(InitTest, WaitForSlotEventDontBlock)
{
    ASSERT_RV(CKR_OK, module_->initialize());
    auto slots = slot_list(fl(), false);
    for (int i = 0; i < 3; ++i) {
        CK_SLOT_ID slot = kBogusSlot;
        CK_RV rv = fl()->C_WaitForSlotEvent(CKF_DONT_BLOCK, &slot, nullptr);
        EXPECT_RV_IN(rv, CKR_NO_EVENT, CKR_OK);
        if (rv == CKR_OK) {
            EXPECT_NE(std::find(slots.begin(), slots.end(), slot), slots.end())
                << "event for unknown slot " << slot;
        }
    }
}

// Blocking C_WaitForSlotEvent: CKR_FUNCTION_NOT_SUPPORTED is allowed for now;
// if it does block, C_Finalize from another thread must unblock it with
// CKR_CRYPTOKI_NOT_INITIALIZED (C_Finalize). Runs in a child process so a hang
// cannot take the test binary down.
TEST_F(InitTest, WaitForSlotEventBlockingNeverHangs)
{
    auto r = run_in_child(
        [&](ChildReport& rep) {
            if (!rep.expect_rv(CKR_OK, module_->initialize(), "C_Initialize"))
                return;
            std::atomic<bool> done{false};
            std::atomic<CK_RV> result{CKR_GENERAL_ERROR};
            std::thread waiter([&] {
                CK_SLOT_ID slot = 0;
                result = fl()->C_WaitForSlotEvent(0, &slot, nullptr);
                done = true;
            });
            std::this_thread::sleep_for(300ms);
            if (done) {
                // Nothing happens to the slots here: the blocking form must block.
                rep.fail("blocking C_WaitForSlotEvent returned " + rv_name(result.load()) +
                         " while nothing happened");
                waiter.join();
                rep.expect_rv(CKR_OK, module_->finalize(), "C_Finalize");
                return;
            }
            rep.expect_rv(CKR_OK, module_->finalize(), "C_Finalize while a thread waits");
            for (int i = 0; i < 50 && !done; ++i)
                std::this_thread::sleep_for(100ms);
            if (!done) {
                rep.fail("C_WaitForSlotEvent still blocked 5 s after C_Finalize");
                waiter.detach();
                return;
            }
            waiter.join();
            rep.expect_rv(CKR_CRYPTOKI_NOT_INITIALIZED, result.load(),
                          "blocked C_WaitForSlotEvent after C_Finalize");
        },
        20s);
    EXPECT_TRUE(r.ok()) << r.describe();
}

// ---- configuration errors ----------------------------------------------------

struct ConfigCase {
    const char* name;
    // Breaks the configuration of `env` (ukey.conf or the environment).
    std::function<void(TestEnv&)> apply;
};

void PrintTo(const ConfigCase& c, std::ostream* os)
{
    *os << c.name;
}

std::string backend_block(const std::string& name, const std::string& module)
{
    return "\n[[backend]]\nname = \"" + name + "\"\nmodule = \"" + module +
           "\"\npin_counter = \"ukey\"\n";
}

std::string state_line(TestEnv& env)
{
    return "state_dir = \"" + env.state_dir().string() + "\"\n";
}

const std::vector<ConfigCase>& config_cases()
{
    static const std::vector<ConfigCase> cases = {
        {"ConfigFileMissing",
         [](TestEnv& env) { env.set_ukey_conf_variable((env.dir() / "no-such.conf").string()); }},
        {"ConfigPathIsDirectory",
         [](TestEnv& env) { env.set_ukey_conf_variable(env.dir().string()); }},
        {"NotToml", [](TestEnv& env) { env.write_ukey_conf("this is [not toml\n\"\n= = =\n"); }},
        {"BinaryGarbage",
         [](TestEnv& env) { env.write_ukey_conf(std::string("\x00\xff\xfe\x01[[", 6)); }},
        {"UnterminatedString",
         [](TestEnv& env) {
             env.write_ukey_conf(state_line(env) +
                                 "[[backend]]\nname = \"softhsm\nmodule = \"x\"\n");
         }},
        {"BackendWithoutModule",
         [](TestEnv& env) {
             env.write_ukey_conf(state_line(env) +
                                 "\n[[backend]]\nname = \"softhsm\"\npin_counter = \"ukey\"\n");
         }},
        {"ModuleWrongType",
         [](TestEnv& env) {
             env.write_ukey_conf(state_line(env) +
                                 "\n[[backend]]\nname = \"softhsm\"\nmodule = 42\n");
         }},
        {"DuplicateBackendNames",
         [](TestEnv& env) {
             env.write_ukey_conf(state_line(env) +
                                 backend_block("softhsm", softhsm2_module_path()) +
                                 backend_block("softhsm", softhsm2_module_path()));
         }},
        {"BackendModuleMissing",
         [](TestEnv& env) {
             env.write_ukey_conf(state_line(env) +
                                 backend_block("softhsm", (env.dir() / "nope.so").string()));
         }},
        {"BackendModuleNotALibrary",
         [](TestEnv& env) {
             auto p = env.dir() / "fake.so";
             std::FILE* f = std::fopen(p.c_str(), "w");
             std::fputs("not an ELF file\n", f);
             std::fclose(f);
             env.write_ukey_conf(state_line(env) + backend_block("softhsm", p.string()));
         }},
        {"BackendModuleWithoutGetFunctionList",
         [](TestEnv& env) {
             // A real shared library that is not a PKCS#11 module.
             Dl_info info{};
             dladdr(reinterpret_cast<void*>(&EVP_sha256), &info);
             env.write_ukey_conf(state_line(env) +
                                 backend_block("softhsm", info.dli_fname ? info.dli_fname : "?"));
         }},
        {"BackendInitializeFails",
         [](TestEnv& env) {
             // SoftHSM2 returns CKR_GENERAL_ERROR from C_Initialize when its
             // configuration file cannot be read.
             setenv("SOFTHSM2_CONF", (env.dir() / "missing-softhsm2.conf").c_str(), 1);
         }},
    };
    return cases;
}

class ConfigError : public InitTest, public testing::WithParamInterface<ConfigCase> {};

// The brief for ukey: a missing/broken configuration or a backend that cannot
// be loaded makes C_Initialize fail cleanly with CKR_FUNCTION_FAILED or
// CKR_GENERAL_ERROR (both are C_Initialize return values in v2.40), leaving
// the module uninitialised; once the configuration is fixed it initialises.
TEST_P(ConfigError, InitializeFailsCleanly)
{
    std::string softhsm_conf = getenv("SOFTHSM2_CONF") ? getenv("SOFTHSM2_CONF") : "";
    GetParam().apply(*env_);
    for (int attempt = 0; attempt < 2; ++attempt) {
        SCOPED_TRACE("attempt " + std::to_string(attempt));
        CK_RV rv = module_->initialize();
        EXPECT_RV_IN(rv, CKR_FUNCTION_FAILED, CKR_GENERAL_ERROR);
        if (rv == CKR_OK)
            module_->finalize();
        expect_not_initialized();
    }
    // Repair and retry.
    setenv("SOFTHSM2_CONF", softhsm_conf.c_str(), 1);
    env_->set_ukey_conf_variable(env_->ukey_conf_path().string());
    env_->rewrite_ukey_conf();
    ASSERT_RV(CKR_OK, module_->initialize());
    expect_usable();
}

INSTANTIATE_TEST_SUITE_P(All, ConfigError, testing::ValuesIn(config_cases()),
                         [](const testing::TestParamInfo<ConfigCase>& i) {
                             return std::string(i.param.name);
                         });

// UKEY_CONF unset: whatever the module's default, no crash and a defined result.
TEST_F(InitTest, ConfigVariableUnsetDoesNotCrash)
{
    env_->set_ukey_conf_variable(std::nullopt);
    CK_RV rv = module_->initialize();
    EXPECT_RV_IN(rv, CKR_OK, CKR_FUNCTION_FAILED, CKR_GENERAL_ERROR);
}

// ============================================================================
// (e) C_GetInterfaceList / C_GetInterface
// ============================================================================

class Interfaces : public InitTest {
protected:
    void SetUp() override
    {
        InitTest::SetUp();
        get_list_ = reinterpret_cast<CK_C_GetInterfaceList>(module_->symbol("C_GetInterfaceList"));
        get_ = reinterpret_cast<CK_C_GetInterface>(module_->symbol("C_GetInterface"));
        ASSERT_NE(get_list_, nullptr);
        ASSERT_NE(get_, nullptr);
    }
    std::vector<CK_INTERFACE> list()
    {
        CK_ULONG n = 0;
        check(get_list_(nullptr, &n), "C_GetInterfaceList(count)");
        std::vector<CK_INTERFACE> v(n);
        check(get_list_(v.data(), &n), "C_GetInterfaceList");
        v.resize(n);
        return v;
    }
    static std::string name(const CK_INTERFACE& i)
    {
        return i.pInterfaceName ? reinterpret_cast<const char*>(i.pInterfaceName) : "(null)";
    }
    static CK_VERSION version(const CK_INTERFACE& i)
    {
        return static_cast<CK_FUNCTION_LIST*>(i.pFunctionList)->version;
    }
    CK_C_GetInterfaceList get_list_ = nullptr;
    CK_C_GetInterface get_ = nullptr;
};

// PKCS#11 v3.0 C_GetInterfaceList/C_GetInterface (offered by this v2.40
// module for discovery): they work without C_Initialize and the "PKCS 11"
// interface, version 2.40, is the C_GetFunctionList list.
TEST_F(Interfaces, ListContainsTheFunctionList)
{
    for (bool initialized : {false, true}) {
        SCOPED_TRACE(initialized ? "after C_Initialize" : "before C_Initialize");
        if (initialized) {
            ASSERT_RV(CKR_OK, module_->initialize());
        }
        auto ifs = list();
        ASSERT_GE(ifs.size(), 1u);
        int matches = 0;
        for (const auto& i : ifs) {
            ASSERT_NE(i.pFunctionList, nullptr);
            ASSERT_NE(i.pInterfaceName, nullptr);
            if (name(i) == UKEY_INTERFACE_NAME && version(i).major == 2 &&
                version(i).minor == 40) {
                ++matches;
                EXPECT_EQ(i.pFunctionList, static_cast<void*>(fl()));
            }
        }
        EXPECT_EQ(matches, 1) << "one \"PKCS 11\" 2.40 interface expected";
    }
}

TEST_F(Interfaces, ListArguments)
{
    EXPECT_RV(CKR_ARGUMENTS_BAD, get_list_(nullptr, nullptr));
    CK_INTERFACE one{};
    EXPECT_RV(CKR_ARGUMENTS_BAD, get_list_(&one, nullptr));
    CK_ULONG n = 0;
    ASSERT_RV(CKR_OK, get_list_(nullptr, &n));
    ASSERT_GE(n, 1u);
    // v3.0 C_GetInterfaceList follows the v2.40 "Conventions for functions
    // returning output in a variable-length buffer": too small a buffer gives
    // CKR_BUFFER_TOO_SMALL and the needed count.
    CK_ULONG small = 0;
    EXPECT_RV(CKR_BUFFER_TOO_SMALL, get_list_(&one, &small));
    EXPECT_EQ(small, n);
}

TEST_F(Interfaces, GetInterfaceReturnsTheFunctionList)
{
    CK_UTF8CHAR pkcs11_name[] = UKEY_INTERFACE_NAME;
    CK_VERSION v240{2, 40};
    struct Case {
        const char* what;
        CK_UTF8CHAR* name;
        CK_VERSION* version;
    } cases[] = {
        {"NULL name (default interface)", nullptr, nullptr},
        {"\"PKCS 11\", any version", pkcs11_name, nullptr},
        {"\"PKCS 11\", version 2.40", pkcs11_name, &v240},
        {"NULL name, version 2.40", nullptr, &v240},
    };
    for (bool initialized : {false, true}) {
        if (initialized) {
            ASSERT_RV(CKR_OK, module_->initialize());
        }
        for (const auto& c : cases) {
            SCOPED_TRACE(std::string(c.what) + (initialized ? " (initialised)" : ""));
            CK_INTERFACE* iface = nullptr;
            ASSERT_RV(CKR_OK, get_(c.name, c.version, &iface, 0));
            ASSERT_NE(iface, nullptr);
            EXPECT_EQ(iface->pFunctionList, static_cast<void*>(fl()));
            EXPECT_EQ(name(*iface), UKEY_INTERFACE_NAME);
        }
    }
}

TEST_F(Interfaces, GetInterfaceRejectsWhatIsNotOffered)
{
    CK_INTERFACE* iface = nullptr;
    CK_UTF8CHAR pkcs11_name[] = UKEY_INTERFACE_NAME;
    EXPECT_RV(CKR_ARGUMENTS_BAD, get_(pkcs11_name, nullptr, nullptr, 0));

    auto ifs = list();
    auto offered = [&](const std::string& n, int major, int minor, CK_FLAGS flags) {
        for (const auto& i : ifs)
            if (name(i) == n && (major < 0 || (version(i).major == major &&
                                               version(i).minor == minor)) &&
                (i.flags & flags) == flags)
                return true;
        return false;
    };
    CK_UTF8CHAR other[] = "Vendor ukeytest";
    EXPECT_NE(get_(other, nullptr, &iface, 0), CKR_OK) << "unknown interface name";
    CK_VERSION v30{3, 0};
    if (!offered(UKEY_INTERFACE_NAME, 3, 0, 0)) {
        EXPECT_NE(get_(pkcs11_name, &v30, &iface, 0), CKR_OK) << "3.0 is not offered";
    }
    if (!offered(UKEY_INTERFACE_NAME, -1, -1, CKF_INTERFACE_FORK_SAFE)) {
        EXPECT_NE(get_(pkcs11_name, nullptr, &iface, CKF_INTERFACE_FORK_SAFE), CKR_OK)
            << "no fork-safe interface is offered";
    }
}

}  // namespace
