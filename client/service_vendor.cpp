// ukey's vendor functions through the ukey service (module.h,
// service_vendor): JSON lines on the service's socket, answered by the
// serving child from the module itself (tools/ukeyd/serve_vendor.*).
#include "client/module.h"

#include "token/text_field.h"
#include "token/ukeyd_client.h"

#include <mutex>

namespace ukey::client {

namespace {

std::mutex mu;
std::filesystem::path service_socket;
std::unique_ptr<UkeydClient> connection;

// One request; nullopt when the service cannot be asked (the connection is
// dropped and made again on the next call).
std::optional<nlohmann::json> ask(const nlohmann::json& req)
{
    using Clock = UkeydClient::Clock;
    std::lock_guard<std::mutex> g(mu);
    const auto deadline = Clock::now() + std::chrono::seconds(20);
    if (!connection || !connection->connected()) {
        connection = std::make_unique<UkeydClient>(4096);
        if (connection->connect(service_socket.string(), deadline))
            return std::nullopt;
    }
    UkeydFailure failure{};
    auto reply = connection->request(req.dump(), deadline, failure);
    if (!reply)
        connection->close();
    return reply;
}

CK_RV rv_of(const nlohmann::json& r)
{
    const auto rv = r.value("rv", nlohmann::json());
    return rv.is_number_unsigned() ? rv.get<CK_RV>() : CK_RV(CKR_DEVICE_ERROR);
}

CK_ULONG ulong_of(const nlohmann::json& r, const char* k)
{
    const auto v = r.value(k, nlohmann::json());
    return v.is_number_unsigned() ? v.get<CK_ULONG>() : CK_UNAVAILABLE_INFORMATION;
}

// "flags" as a reply gives it; 0 when it does not.
CK_FLAGS flags_of(const nlohmann::json& r)
{
    const CK_ULONG flags = ulong_of(r, "flags");
    return flags == CK_UNAVAILABLE_INFORMATION ? 0 : flags;
}

CK_RV get_pin_status(CK_SLOT_ID slot, UKEY_PIN_STATUS* out)
{
    if (!out)
        return CKR_ARGUMENTS_BAD;
    auto r = ask({{"request", "pin-status"}, {"slot", slot}});
    if (!r)
        return CKR_DEVICE_ERROR;
    if (CK_RV rv = rv_of(*r); rv != CKR_OK)
        return rv;
    out->userTriesLeft = ulong_of(*r, "user_left");
    out->userMaxTries = ulong_of(*r, "user_max");
    out->soTriesLeft = ulong_of(*r, "so_left");
    out->soMaxTries = ulong_of(*r, "so_max");
    out->flags = flags_of(*r);
    return CKR_OK;
}

CK_RV get_slot_backend(CK_SLOT_ID slot, UKEY_SLOT_BACKEND* out)
{
    if (!out)
        return CKR_ARGUMENTS_BAD;
    auto r = ask({{"request", "slot-backend"}, {"slot", slot}});
    if (!r)
        return CKR_DEVICE_ERROR;
    if (CK_RV rv = rv_of(*r); rv != CKR_OK)
        return rv;
    const auto name = r->value("name", nlohmann::json());
    const auto module = r->value("module", nlohmann::json());
    pad_field(out->name, sizeof out->name, name.is_string() ? name.get<std::string>() : std::string());
    pad_field(out->module, sizeof out->module, module.is_string() ? module.get<std::string>() : std::string());
    out->flags = flags_of(*r);
    return CKR_OK;
}

CK_RV set_pin_limits(CK_SESSION_HANDLE, CK_ULONG, CK_ULONG)
{
    return CKR_FUNCTION_NOT_SUPPORTED;
}

CK_RV init_transport_pin(CK_SESSION_HANDLE, CK_UTF8CHAR_PTR, CK_ULONG)
{
    return CKR_FUNCTION_NOT_SUPPORTED;
}

const UKEY_FUNCTION_LIST table{{UKEY_VENDOR_VERSION_MAJOR, UKEY_VENDOR_VERSION_MINOR}, get_pin_status,
                               set_pin_limits, init_transport_pin, get_slot_backend};

} // namespace

const UKEY_FUNCTION_LIST* service_vendor(const std::filesystem::path& socket)
{
    std::lock_guard<std::mutex> g(mu);
    if (service_socket.empty())
        service_socket = socket;
    return &table;
}

} // namespace ukey::client
