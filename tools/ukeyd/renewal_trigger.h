// The daemon's side of automatic renewal (docs/renewal.md): which `ukey
// renew` to run for a certificate nearing expiry, and which `ukey renew
// --resume` to run for a Key that comes back with an unfinished renewal.
// ukeyd runs the argv like a hook (no shell, a timeout, logged) with
// UKEY_CONF set to the config it read, and emits `renewal` events.
#pragma once

#include "tool_config.h"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>
#include <vector>

namespace ukey::daemon {

// The ukey binary: [renewal] ukey, else `ukey` next to the running ukeyd
// (/proc/self/exe), else /usr/bin/ukey.
std::filesystem::path ukey_binary(const ToolConfig& cfg);

// argv of `ukey --json renew <slot_id> --cert <id> --ca-name <ca> --unattended`
// to run now; empty if no [[renewal.ca]] serves this Key and certificate,
// `days_left` is above its threshold, the Key has no slot, or the
// certificate is a CA's or a superseded one. `key` and `cert` are the
// shapes of docs/ukeyd.md "Key object".
std::vector<std::string> renewal_command(const ToolConfig& cfg, const nlohmann::json& key, const nlohmann::json& cert,
                                         long days_left);

// argv of `ukey --json renew <slot_id> --resume --unattended` if a renewal
// journal for this Key is in <state_dir>/renewal/; else empty.
std::vector<std::string> resume_command(const ToolConfig& cfg, const nlohmann::json& key);

// How long ukeyd should let one such command run: the CA timeout plus
// room for key generation.
double renewal_timeout_s(const ToolConfig& cfg);

} // namespace ukey::daemon
