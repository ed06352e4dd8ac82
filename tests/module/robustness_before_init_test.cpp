// Robustness tables (a): every function before C_Initialize; the exports (robustness.h says what each binary holds).
#include "robustness.h"

using namespace robust;
using namespace ukeytest;
using modtest::module_path;
using namespace std::chrono_literals;

namespace {

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

}  // namespace
