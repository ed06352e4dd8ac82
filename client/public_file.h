// Writing the public files the tools export (certificates, requests).
#pragma once

#include "token/result.h"

#include <span>
#include <string>

namespace ukey::client {

// Writes `data` to `path` (mode 0644 less the umask: certificates and
// requests are public) through a new file renamed over it; a symbolic link
// or a device at `path` is refused, never written through. The error (rv
// CKR_OK) says why not.
Result<void> write_file(const std::string& path, std::span<const unsigned char> data);

} // namespace ukey::client
