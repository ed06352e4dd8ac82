// The audit log: a tamper-evident, hash-chained JSON-lines record of
// security events (logins, PIN changes, Key initialisation, key and object
// creation and removal), written by every process that loads the module
// (docs/audit.md).
//
// One JSON object per line. Each record carries the SHA-256 of the one
// before it (prev) and its own (hash, over the line without its hash
// field), and audit.head holds the sequence number and hash of the last
// record, so that editing, removing, inserting, reordering and cutting off
// records is found by verify(). It is evidence against mistakes and against
// others, not against the owner of the files: whoever can write them can
// rewrite the whole chain consistently (docs/audit.md, "What verify cannot
// tell").
#pragma once

#include "token/audit_settings.h"
#include "token/result.h"

#include <ukey/pkcs11.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ukey {

// What happened. The names (audit_kind_name) are stable: they are what the
// log holds and what `ukey audit show --kind` takes.
enum class AuditKind {
    login,            // C_Login succeeded
    login_failed,     // C_Login failed (wrong PIN, locked, ...)
    pin_locked,       // a wrong PIN used up the last try
    pin_unlocked,     // the user PIN was unlocked (C_InitPIN by the SO)
    set_pin,          // C_SetPIN
    init_pin,         // C_InitPIN
    init_token,       // C_InitToken
    key_generated,    // C_GenerateKey / C_GenerateKeyPair
    object_created,   // a certificate or key object was created
    object_destroyed, // a certificate or key object was destroyed
};

// "login", "login-failed", "pin-locked", "pin-unlocked", "set-pin",
// "init-pin", "init-token", "key-generated", "object-created",
// "object-destroyed".
std::string_view audit_kind_name(AuditKind kind);
std::optional<AuditKind> audit_kind_from(std::string_view name);
// Every kind, in the order above.
const std::vector<AuditKind>& audit_kinds();

// One event as the caller describes it. There is no place for a PIN. Every
// string may come from a Key and is treated as hostile: cut to
// audit_field_max bytes and stored escaped (token/escape.h printable()).
struct AuditEvent {
    AuditKind kind = AuditKind::login;
    std::string key;       // the Key's identity text: backend, label, serial
    std::string user_type; // "user", "so", "context-specific", or ""
    CK_RV rv = CKR_OK;     // the result the application got
    std::string detail;    // e.g. the object class and label
};

inline constexpr std::size_t audit_field_max = 256;

// A record as read back: the event plus what append() added.
struct AuditRecord {
    std::uint64_t seq = 0;
    std::string time; // UTC, ISO 8601 with milliseconds: 2026-12-06T22:58:42.123Z
    std::string kind; // as stored (a known kind name, unless the file was edited)
    std::string key, user_type, detail;
    CK_RV rv = CKR_OK;
    long long pid = 0;
    long long uid = 0;
    std::string exe; // the executable that appended it (/proc/self/exe)
    std::string prev, hash;
    std::string file; // the file and line it was read from
    std::size_t line = 0;
};

class AuditLog {
public:
    // A log for these settings; nullptr (not an error) when disabled. Fails
    // when the folder exists but is not a private folder of this user. The
    // folder is made on the first append.
    static Result<std::unique_ptr<AuditLog>> open(const AuditSettings& settings);

    // Appends one record (time, pid, uid, executable, seq, prev and hash are
    // added here), rotating first when audit.log would outgrow max_bytes.
    // Safe from any number of threads and processes at once (flock on
    // audit.lock). An error says why nothing was written: the caller logs it
    // and goes on, since a PKCS#11 call never fails because of its audit
    // record. Never waits on the disk (no fsync) and at most a few seconds
    // for another process's append.
    Result<void> append(const AuditEvent& event);

    const AuditSettings& settings() const { return settings_; }

private:
    explicit AuditLog(AuditSettings s) : settings_(std::move(s)) {}
    AuditSettings settings_;
};

struct AuditFilter {
    std::optional<std::string> kind;  // a kind name
    std::optional<std::string> key;   // a substring of the record's key text
    std::optional<std::string> since; // records at or after this time (same format as AuditRecord::time)
};

struct AuditRecords {
    std::vector<AuditRecord> records; // oldest first, across the rotated files
    std::size_t unreadable = 0;       // lines that are not records (damage: run verify)
};
// The records of all kept files that pass the filter. An error only when
// the folder or a file cannot be read or is not private.
Result<AuditRecords> read_records(const AuditSettings& settings, const AuditFilter& filter = {});

struct VerifyReport {
    bool ok = false;
    // The first bad record: edited (hash mismatch), removed (the first
    // missing seq), inserted, reordered, rewritten, or cut off at the end.
    std::optional<std::uint64_t> first_bad_seq;
    std::string file;     // where it is (or would be), empty if no file applies
    std::size_t line = 0; // 1-based line in that file, 0 if none applies
    std::string why;      // one sentence
    std::size_t records = 0;             // records checked
    std::optional<std::uint64_t> first_seq, last_seq;
    std::vector<std::string> files;      // the files checked, oldest first
    std::vector<std::string> notes;      // what was taken as given (rotated-away start, crash remains)
};
// Checks every kept file and audit.head. An error only when the folder or
// a file cannot be read or is not private; a broken chain is a report with
// ok == false.
Result<VerifyReport> verify(const AuditSettings& settings);

} // namespace ukey
