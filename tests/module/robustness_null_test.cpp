// Robustness tables (b): NULL pointer arguments (robustness.h says what each binary holds).
#include "robustness.h"

using namespace robust;
using namespace ukeytest;
using modtest::module_path;
using namespace std::chrono_literals;

namespace {


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

}  // namespace
