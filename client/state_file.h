// Private state files of ukey's tools (renewal journals, ukeyd's expiry
// reminders and its copy of the config in force): 0600 files in 0700
// folders, replaced atomically, so a crash leaves the old or the new text.
#pragma once

#include "token/result.h"

#include <filesystem>
#include <string>

namespace ukey::client {

// mkdir -p with 0700 for the folders made here; an existing folder keeps its
// mode but must not be writable by others. The error says why not.
Result<void> make_private_dir(const std::filesystem::path& dir);
// fsync of a folder, so that a rename or unlink in it is durable.
bool sync_dir(const std::filesystem::path& dir);
// Writes `text` to `path` (0600) through a temporary file, fsync and rename,
// creating the folder as make_private_dir does.
Result<void> write_private_file(const std::filesystem::path& path, const std::string& text);
// Removes `path` durably (unlink, then fsync of its folder); no error if it
// is already gone. The error names the file.
Result<void> remove_private_file(const std::filesystem::path& path);

} // namespace ukey::client
