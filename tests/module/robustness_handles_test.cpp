// Robustness tables (c): invalid handles (robustness.h says what each binary holds).
#include "robustness.h"

using namespace robust;
using namespace ukeytest;
using modtest::module_path;
using namespace std::chrono_literals;

namespace {

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

}  // namespace
