// The audit log's files as audit_log.cpp writes them and audit_read.cpp
// reads them: names, the line format, audit.head, private folders and files
// (docs/audit.md). Internal to ukey-token.
#pragma once

#include "token/audit_log.h"

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

namespace ukey::audit_file {

inline constexpr const char* log_name = "audit.log";
inline constexpr const char* head_name = "audit.head";
inline constexpr const char* lock_name = "audit.lock";
// prev of the very first record.
inline const std::string genesis(64, '0');
// No line the writer makes is longer: five fields of 256 bytes escaped (at
// most 4 bytes each) plus the executable path and the rest.
inline constexpr std::size_t line_max = 16384;

std::filesystem::path rotated(const std::filesystem::path& dir, unsigned n); // audit.log.N
std::string sha256_hex(std::string_view data);
bool is_hash(std::string_view s); // 64 lowercase hex digits

// The line of a record (with its newline): the canonical text is the JSON
// object without "hash"; the line is that object with "hash" appended last,
// so hash = SHA-256 of the line with `,"hash":"..."` removed.
std::string make_line(AuditRecord& r); // sets r.hash
// A line (without newline) read back: the record, or why it is none
// ("hash mismatch" for a well-formed record whose hash does not match).
struct Parsed {
    std::optional<AuditRecord> record;
    bool hash_mismatch = false;
    std::string why;
};
Parsed parse_line(std::string_view line);

// audit.head: "ukey-audit-head 1 seq=N hash=HEX first=F\n": the last
// record, and the first one rotation kept (so that records removed from the
// start are told from records rotated away).
struct Head {
    std::uint64_t seq = 0;
    std::string hash;
    std::uint64_t first = 1;
};
std::string head_text(const Head& h);
std::optional<Head> parse_head(std::string_view text);

// The file or folder is private to this user (private_to_us()), or why not.
Result<void> check_private(const std::filesystem::path& path, bool folder);
// The folder, checked; made (0700, and any missing parents) with `create`.
// false: it does not exist (and `create` was not asked).
Result<bool> private_dir(const std::filesystem::path& dir, bool create);
// A whole private file; nullopt if it does not exist.
Result<std::optional<std::string>> read_private(const std::filesystem::path& path);
// The seq of the first record of the oldest log file there, if it reads.
std::optional<std::uint64_t> first_kept_seq(const std::filesystem::path& dir);

Error error(const std::filesystem::path& path, const std::string& what);

// Closes the descriptor (and so drops its flock) on every path.
struct Fd {
    int fd = -1;
    Fd() = default;
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    ~Fd();
};
// flock on audit.lock in `dir`: exclusive for an append (the file is made),
// shared for reading a consistent set of files (false: no lock file yet).
// Waits at most a few seconds: a login must not hang behind a process
// stopped while it held the lock.
Result<bool> take_lock(const std::filesystem::path& dir, Fd& f, bool exclusive);

} // namespace ukey::audit_file
