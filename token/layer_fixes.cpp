// BackendFixes: where a backend departs from PKCS#11 v2.40 and the fix is
// cheap and safe, the application sees what the spec says. Every row of
// docs/backend-fixes.md that is a backend's answer is fixed here, and only
// here; `fixes = false` in a [[backend]] turns them off for that backend.
#include "token/backend.h"
#include "token/layer.h"

#include <memory>

namespace ukey {

namespace {

// SoftHSM2 answers CKR_OBJECT_HANDLE_INVALID where v2.40 lists only the
// key's own code.
template <CK_RV Invalid>
CK_RV key_rv(Layer*, const SessionRoute&, CK_RV rv)
{
    return rv == CKR_OBJECT_HANDLE_INVALID ? Invalid : rv;
}

class BackendFixes final : public Layer {
    void install(Stack& s) override
    {
        constexpr auto key = &key_rv<CKR_KEY_HANDLE_INVALID>;
        after<&Stack::EncryptInit, key>(s);
        after<&Stack::DecryptInit, key>(s);
        after<&Stack::SignInit, key>(s);
        after<&Stack::SignRecoverInit, key>(s);
        after<&Stack::VerifyInit, key>(s);
        after<&Stack::VerifyRecoverInit, key>(s);
        after<&Stack::DigestKey, key>(s);
        after<&Stack::DeriveKey, key>(s);
        after<&Stack::SetOperationState, key>(s);
        after<&Stack::UnwrapKey, &key_rv<CKR_UNWRAPPING_KEY_HANDLE_INVALID>>(s);
        take<&BackendFixes::WrapKey>(s.WrapKey);
        take<&BackendFixes::OpenSession>(s.OpenSession);
        take<&BackendFixes::GetTokenInfo>(s.GetTokenInfo);
    }

    // C_WrapKey's CKR_OBJECT_HANDLE_INVALID: say which of the two keys is
    // missing.
    CK_RV WrapKey(const SessionRoute& r, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE wrapping, CK_OBJECT_HANDLE key,
                  CK_BYTE_PTR out, CK_ULONG_PTR out_len)
    {
        CK_RV rv = below().WrapKey(r, m, wrapping, key, out, out_len);
        if (rv != CKR_OBJECT_HANDLE_INVALID)
            return rv;
        CK_OBJECT_CLASS cls;
        CK_ATTRIBUTE a{CKA_CLASS, &cls, sizeof cls};
        CK_RV probe = below().GetAttributeValue(r, wrapping, &a, 1);
        return probe == CKR_OBJECT_HANDLE_INVALID ? CKR_WRAPPING_KEY_HANDLE_INVALID : CKR_KEY_HANDLE_INVALID;
    }

    // SoftHSM2 answers CKR_SESSION_HANDLE_INVALID (not a C_OpenSession code)
    // when another thread's C_CloseAllSessions runs at the same moment.
    CK_RV OpenSession(const SlotEntry& e, CK_FLAGS flags, CK_VOID_PTR app, CK_NOTIFY notify,
                      CK_SESSION_HANDLE_PTR out)
    {
        CK_RV rv = CKR_GENERAL_ERROR;
        for (int attempt = 0; attempt < 3; ++attempt) {
            rv = below().OpenSession(e, flags, app, notify, out);
            if (rv != CKR_SESSION_HANDLE_INVALID)
                return rv;
        }
        return CKR_DEVICE_ERROR;
    }

    // SoftHSM2 under load from other processes now and then answers CKR_OK
    // with blank fields: read_token_info does not believe one odd answer.
    CK_RV GetTokenInfo(const SlotEntry& e, CK_TOKEN_INFO_PTR info)
    {
        return read_token_info(*e.backend, e.backend_slot, *info, e.names_key ? &e.identity : nullptr);
    }
};

} // namespace

std::unique_ptr<Layer> make_backend_fixes()
{
    return std::make_unique<BackendFixes>();
}

} // namespace ukey
