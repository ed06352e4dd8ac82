// ukey.conf changed by `ukey backend add|remove`: the text stays as its
// author wrote it (comments, order, other sections), one [[backend]] table
// is appended or cut out, and the result must read as the module will read
// it (parse_config) before anything is written.
#pragma once

#include "token/config.h"
#include "token/result.h"

#include <filesystem>
#include <string>
#include <string_view>

namespace ukey::client {

// `text` with a [[backend]] table for `b` at its end (only the settings
// that differ from the defaults written). The error (rv CKR_OK) says why
// not: the name is taken, or the result is not a valid config (its error).
Result<std::string> config_add_backend(std::string_view text, const std::filesystem::path& source,
                                       const BackendConfig& b);

// `text` without the [[backend]] table named `name` (its header to the next
// table's header). The error says why not: no such backend, or the result is
// not a valid config (the last backend, for one).
Result<std::string> config_remove_backend(std::string_view text, const std::filesystem::path& source,
                                          const std::string& name);

} // namespace ukey::client
