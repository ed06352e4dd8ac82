// `ukeyd --serve-pkcs11 PEER --serve-as USER`: one serving child of service
// mode (docs/service-mode.md). ukeyd starts it per accepted connection,
// with the connection as fd 3.
#pragma once

#include <string>

namespace ukey::daemon {

// peer: "uid:gid:pid" (SO_PEERCRED); run_as: "uid:gid" to become when
// started as root, or empty to stay. Serves libukey-pkcs11.so on fd 3 with
// p11-kit's RPC server until the peer hangs up; the exit code.
int run_serve_child(const std::string& peer, const std::string& run_as);

} // namespace ukey::daemon
