// A listening Unix socket for ukeyd: its JSON socket (server.*) and, in
// service mode, the PKCS#11 one (pkcs11_service.*). Both are open to every
// local user: access is decided per connection with SO_PEERCRED.
#pragma once

#include "token/result.h"

#include <filesystem>

namespace ukey::daemon {

// Binds and listens on `path` (non-blocking, close-on-exec), creating its
// folders (0755). A stale socket file is replaced; one a running process
// answers on is not. `setting` names the config key, for the error.
Result<int> listen_unix(const std::filesystem::path& path, int backlog, const char* setting);

} // namespace ukey::daemon
