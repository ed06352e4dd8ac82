// Reading a whole file, bounded: config files, journals, state files,
// certificates given on the command line. The one reader of ukey, ukeyd and
// the module (writing private state is client/state_file.h's), and the one
// loop that writes all of a text to a descriptor.
#pragma once

#include "token/result.h"

#include <cstddef>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include <sys/stat.h>

namespace ukey {

// The whole content of the open descriptor `fd` (not closed here); an error
// (rv CKR_OK) says why not, or that it is larger than `max` bytes.
Result<std::string> read_fd(int fd, std::size_t max);
// The whole file; the error names the reason (strerror, or too large), not
// the path, so that callers phrase it.
Result<std::string> read_file(const std::filesystem::path& path, std::size_t max);
// The same, but a file that does not exist is no error: nullopt.
Result<std::optional<std::string>> read_file_if_exists(const std::filesystem::path& path, std::size_t max);

// Writes all of `s` to `fd`, again after EINTR and short writes; false
// (errno set by write, or 0 when it wrote nothing) if it could not.
bool write_all(int fd, std::string_view s);

// A state file or folder (of `st`) is this user's alone: the right type, our
// owner, nothing for group or others. The error is only the reason ("is open
// to other users (mode 644, must be 600)"): callers put the path in front.
Result<void> private_to_us(const struct stat& st, bool folder);

} // namespace ukey
