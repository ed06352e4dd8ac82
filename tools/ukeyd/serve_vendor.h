// The other protocol of service mode's socket: ukey's vendor functions
// (ukey/vendor.h), which p11-kit's RPC does not carry, as JSON lines. A
// connection whose first byte is '{' gets this instead of p11-kit's RPC
// (whose first byte is its version, 0), from the same serving child with
// the same peer's view of the Keys (docs/service-mode.md, "Exact counts").
//   {"request":"pin-status","slot":N}
//     -> {"ok":true,"rv":R,"user_left":..,"user_max":..,"so_left":..,"so_max":..,"flags":F}
//   {"request":"slot-backend","slot":N}
//     -> {"ok":true,"rv":R,"name":"..","module":"..","flags":F}
#pragma once

#include <ukey/pkcs11.h>

namespace ukey::daemon {

// Serves `fd` until the peer hangs up; the exit code. get_interface: the
// module's C_GetInterface.
int serve_vendor(CK_FUNCTION_LIST* module, CK_C_GetInterface get_interface, int fd);

} // namespace ukey::daemon
