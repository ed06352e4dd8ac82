// Writing the public files the tools export (certificates, requests).
#pragma once

#include "token/result.h"

#include <span>
#include <sys/types.h>
#include <string>
#include <string_view>

namespace ukey::client {

// Writes `data` to `path` (mode 0644 less the umask: certificates and
// requests are public) through a new file renamed over it; a symbolic link
// or a device at `path` is refused, never written through. The error (rv
// CKR_OK) says why not.
Result<void> write_file(const std::string& path, std::span<const unsigned char> data);
// The same with exactly `mode`, whatever the umask: files other users'
// programs must read (ukey.conf, p11-kit's .module files) when root's umask
// is 077.
Result<void> write_file(const std::string& path, std::span<const unsigned char> data, mode_t mode);
// mkdir -p, the folders made 0755 whatever the umask (for the files above).
// The error (rv CKR_OK) says why not.
Result<void> make_public_dirs(const std::string& dir);
// Both: `text` as `path` with exactly `mode`, its folders made as above (a
// configuration file every user's programs read: ukey.conf, a browser
// policy).
Result<void> write_public_file(const std::string& path, std::string_view text, mode_t mode);

} // namespace ukey::client
