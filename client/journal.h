// The renewal journal (docs/renewal.md): one JSON file per Key in
// <state_dir>/renewal/ (0700), each 0600, replaced atomically (write to a
// temporary file, fsync, rename, fsync the folder), so a crash or a pulled
// Key leaves either the previous step or the next one on disk, never half.
#pragma once

#include "token/result.h"

#include <filesystem>
#include <optional>
#include <string>

namespace ukey::client {

// What names a Key for the journal, the same as ukeyd's key "id":
// "<backend>/<manufacturer>/<model>/<serial>".
std::string key_identity(const std::string& backend, const std::string& manufacturer, const std::string& model,
                         const std::string& serial);

// <state_dir>/renewal
std::filesystem::path journal_dir(const std::filesystem::path& state_dir);
// <state_dir>/renewal/<first 16 bytes of SHA-256(identity), hex>.json
std::filesystem::path journal_path(const std::filesystem::path& state_dir, const std::string& identity);

// The journal's text (JSON, parsed by the caller), if there is one; an
// error if it exists but is unreadable (rv CKR_OK).
Result<std::optional<std::string>> load_journal(const std::filesystem::path& path);
// Writes `text` atomically, creating the folder (0700) if needed.
Result<bool> save_journal(const std::filesystem::path& path, const std::string& text);
// Removes it (and syncs the folder); no error if it is already gone.
Result<bool> remove_journal(const std::filesystem::path& path);

} // namespace ukey::client
