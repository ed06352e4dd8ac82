#include "serve_vendor.h"

#include "client/module.h"
#include "token/files.h"
#include "token/log.h"

#include <ukey/vendor.h>

#include <nlohmann/json.hpp>

#include <cerrno>
#include <string>

#include <unistd.h>

namespace ukey::daemon {

namespace {

using nlohmann::json;

constexpr std::size_t max_line = 1024;
constexpr int max_requests = 4096;

json answer(const UKEY_FUNCTION_LIST* v, const json& req)
{
    const json what = req.value("request", json());
    const json slot = req.value("slot", json());
    if (!slot.is_number_unsigned())
        return json{{"ok", false}, {"message", "a request names its \"slot\" (a number)"}};
    const CK_SLOT_ID id = slot.get<CK_SLOT_ID>();
    if (what == "pin-status") {
        UKEY_PIN_STATUS s{};
        const CK_RV rv = v->C_UkeyGetPinStatus(id, &s);
        return json{{"ok", true},           {"rv", rv},           {"user_left", s.userTriesLeft},
                    {"user_max", s.userMaxTries}, {"so_left", s.soTriesLeft}, {"so_max", s.soMaxTries},
                    {"flags", s.flags}};
    }
    if (what == "slot-backend") {
        UKEY_SLOT_BACKEND b{};
        const CK_RV rv = v->C_UkeyGetSlotBackend(id, &b);
        return json{{"ok", true},
                    {"rv", rv},
                    {"name", client::text(b.name)},
                    {"module", client::text(b.module)},
                    {"flags", b.flags}};
    }
    return json{{"ok", false}, {"message", "unknown request: pin-status or slot-backend"}};
}


} // namespace

int serve_vendor(CK_FUNCTION_LIST* module, CK_C_GetInterface get_interface, int fd)
{
    CK_C_INITIALIZE_ARGS args{};
    args.flags = CKF_OS_LOCKING_OK;
    if (CK_RV rv = module->C_Initialize(&args); rv != CKR_OK) {
        write_all(fd, json{{"ok", false}, {"message", "the ukey module did not start"}, {"rv", rv}}.dump() + "\n");
        return 1;
    }
    const UKEY_FUNCTION_LIST* v = nullptr;
    CK_INTERFACE_PTR i = nullptr;
    if (get_interface &&
        get_interface(reinterpret_cast<CK_UTF8CHAR_PTR>(const_cast<char*>(UKEY_VENDOR_INTERFACE)), nullptr, &i, 0) ==
            CKR_OK &&
        i)
        v = static_cast<const UKEY_FUNCTION_LIST*>(i->pFunctionList);
    std::string in;
    int served = 0;
    char buf[512];
    for (;;) {
        const auto nl = in.find('\n');
        if (nl == std::string::npos) {
            if (in.size() > max_line)
                break; // a line this long is no request of ours
            ssize_t n = read(fd, buf, sizeof buf);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                break;
            in.append(buf, std::size_t(n));
            continue;
        }
        const std::string line = in.substr(0, nl);
        in.erase(0, nl + 1);
        if (++served > max_requests)
            break;
        const json req = json::parse(line, nullptr, false);
        const json reply = !req.is_object() ? json{{"ok", false}, {"message", "a request is a JSON object"}}
                           : !v             ? json{{"ok", false}, {"message", "the module has no ukey interface"}}
                                            : answer(v, req);
        if (!write_all(fd, reply.dump(-1, ' ', false, json::error_handler_t::replace) + "\n"))
            break;
    }
    module->C_Finalize(nullptr);
    return 0;
}

} // namespace ukey::daemon
