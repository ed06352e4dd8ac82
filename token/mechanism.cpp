#include "token/mechanism.h"

#include <cstring>

namespace ukey {
namespace {

// Layouts from PKCS#11 v2.40 (p11-kit's header omits them).
struct EcmqvDeriveParams {
    CK_ULONG kdf;
    CK_ULONG ulSharedDataLen;
    CK_BYTE_PTR pSharedData;
    CK_ULONG ulPublicDataLen;
    CK_BYTE_PTR pPublicData;
    CK_ULONG ulPrivateDataLen;
    CK_OBJECT_HANDLE hPrivateData;
    CK_ULONG ulPublicDataLen2;
    CK_BYTE_PTR pPublicData2;
    CK_OBJECT_HANDLE publicKey;
};
struct X942Dh2DeriveParams {
    CK_ULONG kdf;
    CK_ULONG ulOtherInfoLen;
    CK_BYTE_PTR pOtherInfo;
    CK_ULONG ulPublicDataLen;
    CK_BYTE_PTR pPublicData;
    CK_ULONG ulPrivateDataLen;
    CK_OBJECT_HANDLE hPrivateData;
    CK_ULONG ulPublicDataLen2;
    CK_BYTE_PTR pPublicData2;
};
struct X942MqvDeriveParams {
    X942Dh2DeriveParams dh2;
    CK_OBJECT_HANDLE publicKey;
};
struct KipParams {
    CK_MECHANISM_PTR pMechanism;
    CK_OBJECT_HANDLE hKey;
    CK_BYTE_PTR pSeed;
    CK_ULONG ulSeedLen;
};
struct CmsSigParams {
    CK_OBJECT_HANDLE certificateHandle;
    CK_MECHANISM_PTR pSigningMechanism;
    CK_MECHANISM_PTR pDigestMechanism;
    CK_UTF8CHAR_PTR pContentType;
    CK_BYTE_PTR pRequestedAttributes;
    CK_ULONG ulRequestedAttributesLen;
    CK_BYTE_PTR pRequiredAttributes;
    CK_ULONG ulRequiredAttributesLen;
};
struct RandomData {
    CK_BYTE_PTR pClientRandom;
    CK_ULONG ulClientRandomLen;
    CK_BYTE_PTR pServerRandom;
    CK_ULONG ulServerRandomLen;
};
struct Ssl3KeyMatOut {
    CK_OBJECT_HANDLE hClientMacSecret;
    CK_OBJECT_HANDLE hServerMacSecret;
    CK_OBJECT_HANDLE hClientKey;
    CK_OBJECT_HANDLE hServerKey;
    CK_BYTE_PTR pIVClient;
    CK_BYTE_PTR pIVServer;
};
struct Ssl3KeyMatParams { // also the head of CK_TLS12_KEY_MAT_PARAMS
    CK_ULONG ulMacSizeInBits;
    CK_ULONG ulKeySizeInBits;
    CK_ULONG ulIVSizeInBits;
    CK_BBOOL bIsExport;
    RandomData RandomInfo;
    Ssl3KeyMatOut* pReturnedKeyMaterial;
};
struct WtlsKeyMatOut {
    CK_OBJECT_HANDLE hMacSecret;
    CK_OBJECT_HANDLE hKey;
    CK_BYTE_PTR pIV;
};
struct WtlsKeyMatParams {
    CK_MECHANISM_TYPE DigestMechanism;
    CK_ULONG ulMacSizeInBits;
    CK_ULONG ulKeySizeInBits;
    CK_ULONG ulIVSizeInBits;
    CK_ULONG ulSequenceNumber;
    CK_BBOOL bIsExport;
    RandomData RandomInfo;
    WtlsKeyMatOut* pReturnedKeyMaterial;
};

static_assert(sizeof(EcmqvDeriveParams) <= 128 && sizeof(X942MqvDeriveParams) <= 128 &&
              sizeof(CmsSigParams) <= 128);

} // namespace

CK_RV BackendMechanism::init(const CK_MECHANISM& app, const ObjectHandles& objects, unsigned tag)
{
    m_ = app;
    // Copies the parameter when it is exactly a T, then lets `fix` translate it.
    auto with = [&]<class T>(T*, auto fix) -> CK_RV {
        if (!app.pParameter || app.ulParameterLen != sizeof(T))
            return CKR_MECHANISM_PARAM_INVALID;
        T* p = reinterpret_cast<T*>(param_);
        std::memcpy(p, app.pParameter, sizeof(T));
        m_.pParameter = p;
        return fix(*p);
    };
    auto tr = [&](CK_OBJECT_HANDLE& h, bool optional = false) {
        if (optional && h == CK_INVALID_HANDLE)
            return true;
        auto b = objects.to_backend(tag, h);
        if (b)
            h = *b;
        return b.has_value();
    };
    auto ok = [](bool good) { return good ? CKR_OK : CKR_KEY_HANDLE_INVALID; };

    switch (app.mechanism) {
    case CKM_CONCATENATE_BASE_AND_KEY:
        return with(static_cast<CK_OBJECT_HANDLE*>(nullptr), [&](CK_OBJECT_HANDLE& h) { return ok(tr(h)); });
    case CKM_ECMQV_DERIVE:
        return with(static_cast<EcmqvDeriveParams*>(nullptr),
                    [&](EcmqvDeriveParams& p) { return ok(tr(p.hPrivateData) && tr(p.publicKey, true)); });
    case CKM_X9_42_DH_HYBRID_DERIVE:
        return with(static_cast<X942Dh2DeriveParams*>(nullptr),
                    [&](X942Dh2DeriveParams& p) { return ok(tr(p.hPrivateData)); });
    case CKM_X9_42_MQV_DERIVE:
        return with(static_cast<X942MqvDeriveParams*>(nullptr), [&](X942MqvDeriveParams& p) {
            return ok(tr(p.dh2.hPrivateData) && tr(p.publicKey, true));
        });
    case CKM_KIP_DERIVE:
    case CKM_KIP_WRAP:
    case CKM_KIP_MAC:
        return with(static_cast<KipParams*>(nullptr), [&](KipParams& p) { return ok(tr(p.hKey, true)); });
    case CKM_CMS_SIG:
        return with(static_cast<CmsSigParams*>(nullptr),
                    [&](CmsSigParams& p) { return ok(tr(p.certificateHandle, true)); });
    default:
        return CKR_OK;
    }
}

void translate_derived_handles(const CK_MECHANISM& app, ObjectHandles& objects, unsigned tag)
{
    if (!app.pParameter)
        return;
    switch (app.mechanism) {
    case CKM_SSL3_KEY_AND_MAC_DERIVE:
    case CKM_TLS_KEY_AND_MAC_DERIVE:
    case CKM_TLS12_KEY_AND_MAC_DERIVE:
        if (app.ulParameterLen >= sizeof(Ssl3KeyMatParams)) {
            auto* out = static_cast<Ssl3KeyMatParams*>(app.pParameter)->pReturnedKeyMaterial;
            if (out)
                for (CK_OBJECT_HANDLE* h : {&out->hClientMacSecret, &out->hServerMacSecret, &out->hClientKey,
                                            &out->hServerKey})
                    *h = objects.to_app(tag, *h);
        }
        break;
    case CKM_WTLS_SERVER_KEY_AND_MAC_DERIVE:
    case CKM_WTLS_CLIENT_KEY_AND_MAC_DERIVE:
        if (app.ulParameterLen >= sizeof(WtlsKeyMatParams)) {
            auto* out = static_cast<WtlsKeyMatParams*>(app.pParameter)->pReturnedKeyMaterial;
            if (out)
                for (CK_OBJECT_HANDLE* h : {&out->hMacSecret, &out->hKey})
                    *h = objects.to_app(tag, *h);
        }
        break;
    default:
        break;
    }
}

} // namespace ukey
