// The renewal journal (docs/renewal.md): one JSON file per Key in
// <state_dir>/renewal/ (0700), each 0600, replaced atomically (write to a
// temporary file, fsync, rename, fsync the folder), so a crash or a pulled
// Key leaves either the previous step or the next one on disk, never half.
//
// In memory it is a typed Journal; the file's JSON is only read and written
// here (parse_journal, journal_text).
#pragma once

#include "token/bytes.h"
#include "token/result.h"

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ukey::client {

// The steps a renewal records, in order.
enum class Step { started, key_generated, request_sent, cert_received, cert_written, old_retired };
inline constexpr int step_count = 6;

// Its name in the journal and in `ukey renew --json`'s "steps".
const char* step_name(Step s);
// A step by name; nullopt for anything else.
std::optional<Step> step_named(std::string_view name);

struct StepRecord {
    Step step = Step::started;
    std::string time; // UTC ISO-8601
};

// The certificate a renewal replaces.
struct JournalOld {
    Bytes id;
    std::string label;
    Bytes cert; // DER
};

struct Journal {
    std::string operation = "renew"; // "enroll" | "renew"
    std::string key;                 // key_identity() of the Key
    std::string key_label;
    std::string ca_url;
    std::optional<std::string> ca_name;
    Bytes ca_cert;         // DER of the pinned CA
    bool rekey = true;     // a new key pair ("rekey") or the old one ("same-key")
    bool keep_old = false; // the old certificate and key stay, labelled superseded
    std::string pending_label, final_label;
    std::optional<JournalOld> old;
    std::string old_summary = "null"; // JSON: the old certificate as `--json` shows it
    std::vector<StepRecord> steps;     // never empty once started

    // Filled as the steps pass.
    Bytes new_id;               // from key_generated
    std::string transaction_id; // from request_sent
    Bytes cert;                 // from cert_received: the new certificate (DER)
    std::vector<Bytes> chain;   // from cert_received: CA certificates written next to it

    Step step() const { return steps.empty() ? Step::started : steps.back().step; }
    bool reached(Step s) const { return !steps.empty() && step() >= s; }
};

// The journal as the file holds it (one JSON document).
std::string journal_text(const Journal& j);
// The inverse. The error (rv CKR_OK) names the field that is damaged:
// "its new_id is not a key ID in hex".
Result<Journal> parse_journal(std::string_view text);

// What names a Key for the journal, the same as ukeyd's key "id":
// "<backend>/<manufacturer>/<model>/<serial>".
std::string key_identity(const std::string& backend, const std::string& manufacturer, const std::string& model,
                         const std::string& serial);

// <state_dir>/renewal
std::filesystem::path journal_dir(const std::filesystem::path& state_dir);
// <state_dir>/renewal/<first 16 bytes of SHA-256(identity), hex>.json
std::filesystem::path journal_path(const std::filesystem::path& state_dir, const std::string& identity);

// The journal's text (JSON, parsed by parse_journal), if there is one; an
// error if it exists but is unreadable (rv CKR_OK).
Result<std::optional<std::string>> load_journal(const std::filesystem::path& path);
// Writes `text` atomically, creating the folder (0700) if needed.
Result<void> save_journal(const std::filesystem::path& path, const std::string& text);
// Removes it (and syncs the folder); no error if it is already gone.
Result<void> remove_journal(const std::filesystem::path& path);

} // namespace ukey::client
