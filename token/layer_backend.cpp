// The bottom of every stack: the backend module's own functions, through
// Backend::call (the one door to a backend). ukey's vendor functions have
// their plain meaning here: what the token itself says.
#include "token/backend.h"
#include "token/layer.h"
#include "token/text_field.h"

#include <memory>

namespace ukey {

namespace {

#define UKEY_CALL_ARGS_session(name, args) UKEY_JOIN2(&CK_FUNCTION_LIST::C_##name, r.handle, args)
#define UKEY_CALL_ARGS_slot(name, args) UKEY_JOIN2(&CK_FUNCTION_LIST::C_##name, e.backend_slot, args)
#define UKEY_BACKEND_OF_session r
#define UKEY_BACKEND_OF_slot e

#define UKEY_X(stub, route, name, params, args)                                                                    \
    UKEY_IF_ROUTED_##route(CK_RV call_##name UKEY_LAYER_PARAMS(route, params) {                                   \
        (void)self;                                                                                                \
        return UKEY_BACKEND_OF_##route.backend->call UKEY_CALL_ARGS_##route(name, args);                           \
    })
UKEY_PKCS11_FUNCTIONS(UKEY_X)
#undef UKEY_X

// Without ukey's counting, the token's own flags are all there is.
CK_RV call_UkeyGetPinStatus(Layer*, const SlotEntry& e, UKEY_PIN_STATUS* pStatus)
{
    CK_TOKEN_INFO info;
    if (CK_RV rv = read_token_info(*e.backend, e.backend_slot, info); rv != CKR_OK)
        return rv;
    if (!(info.flags & CKF_TOKEN_INITIALIZED))
        return CKR_TOKEN_NOT_RECOGNIZED;
    auto known = [](CK_FLAGS f, CK_FLAGS locked, CK_FLAGS final_try) -> CK_ULONG {
        return (f & locked) ? 0 : (f & final_try) ? 1 : CK_UNAVAILABLE_INFORMATION;
    };
    *pStatus = UKEY_PIN_STATUS{};
    pStatus->userTriesLeft = known(info.flags, CKF_USER_PIN_LOCKED, CKF_USER_PIN_FINAL_TRY);
    pStatus->soTriesLeft = known(info.flags, CKF_SO_PIN_LOCKED, CKF_SO_PIN_FINAL_TRY);
    pStatus->userMaxTries = pStatus->soMaxTries = CK_UNAVAILABLE_INFORMATION;
    pStatus->flags = (info.flags & CKF_USER_PIN_TO_BE_CHANGED) ? UKEY_PIN_USER_MUST_CHANGE : 0;
    return CKR_OK;
}

// Limits and transport PINs are ukey's counting: not for a token that counts.
CK_RV call_UkeySetPinLimits(Layer*, const SessionRoute&, CK_ULONG, CK_ULONG)
{
    return CKR_FUNCTION_NOT_SUPPORTED;
}

CK_RV call_UkeyInitTransportPIN(Layer*, const SessionRoute&, CK_UTF8CHAR_PTR, CK_ULONG)
{
    return CKR_FUNCTION_NOT_SUPPORTED;
}

CK_RV call_UkeyGetSlotBackend(Layer*, const SlotEntry& e, UKEY_SLOT_BACKEND* pInfo)
{
    pad_field(pInfo->name, sizeof pInfo->name, e.backend->name());
    pad_field(pInfo->module, sizeof pInfo->module, e.backend->module());
    pInfo->flags = 0;
    return CKR_OK;
}

class BackendCalls final : public Layer {
    void install(Stack& s) override
    {
#define UKEY_X(stub, route, name, params, args) UKEY_IF_ROUTED_##route(s.name = {&call_##name, this};)
        UKEY_ALL_FUNCTIONS(UKEY_X)
#undef UKEY_X
        s.CloseAllSessions = {&close_all, this};
        s.CloseSession = {&close, this};
    }

    // A session ended because its Key went away (Proxy::end_sessions): the
    // backend is not called. Its session there may be in use by another
    // thread of the application at this moment, and backends (SoftHSM2)
    // free a session closed under a running call; the backend forgets it
    // when it is finalised or initialised again.
    static CK_RV close(Layer* self, const SessionRoute& r)
    {
        if (r.key_out)
            return CKR_OK;
        return call_CloseSession(self, r);
    }

    // A Key that is out has no sessions left at the backend to close (and
    // its backend slot may hold another token by now).
    static CK_RV close_all(Layer* self, const SlotEntry& e)
    {
        if (e.names_key && !e.present)
            return CKR_OK;
        return call_CloseAllSessions(self, e);
    }
};

} // namespace

std::unique_ptr<Layer> make_backend_calls()
{
    return std::make_unique<BackendCalls>();
}

} // namespace ukey
