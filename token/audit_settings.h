// [audit] of ukey.conf (docs/config.md, docs/audit.md): where the audit log
// lives and when it rotates. Apart from audit_log.h so that config.h needs
// nothing of the log itself.
#pragma once

#include <cstdint>
#include <filesystem>

namespace ukey {

struct AuditSettings {
    bool enabled = true;
    // The folder holding audit.log, audit.log.1 ... audit.log.<keep> and
    // audit.head (0700, the user's own). Default: <state_dir>/audit.
    std::filesystem::path dir;
    // audit.log is rotated before it would grow past this.
    std::uint64_t max_bytes = 1024 * 1024;
    // Rotated files kept besides audit.log (audit.log.1 is the newest).
    unsigned keep = 4;
};

inline constexpr std::uint64_t audit_min_bytes = 4096, audit_max_bytes = std::uint64_t(1) << 30;
inline constexpr unsigned audit_max_keep = 100;

} // namespace ukey
