// A CA's refusal of a Key's last renewal or enrolment (P15 of
// ../shared/user-problems.md): many CAs do not renew over SCEP at all, or
// only within some days of expiry, and re-issue instead. `ukey renew` keeps
// the CA's answer beside the Key's journal until an exchange succeeds, so
// that `ukey doctor` can say later why the certificate was not renewed.
#pragma once

#include "token/result.h"

#include <ctime>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

namespace ukey::client {

struct Refusal {
    std::time_t time = 0;
    std::string operation;   // "renew" or "enroll"
    std::string ca;          // the SCEP URL
    int fail_info = -1;      // SCEP failInfo (scep_message.h), -1 if none
    std::string fail_text;   // the failInfo in words
    std::string cert_serial; // the certificate it was to renew (hex), empty for an enrolment
    std::string cert_label;
};

// For the journal <state_dir>/renewal/<id>.json: <state_dir>/ca-refusals/<id>.json
// (a folder of its own: renewal/ holds only unfinished work).
std::filesystem::path refusal_path(const std::filesystem::path& journal);

std::string refusal_text(const Refusal& r);
// The inverse; the error (rv CKR_OK) says what is damaged. Texts are
// bounded here, and are hostile (the CA wrote fail_text's source, a user may
// have written the file): escape them before they reach a terminal.
Result<Refusal> parse_refusal(std::string_view text);

// The record, if there is one.
Result<std::optional<Refusal>> load_refusal(const std::filesystem::path& path);
// 0600 in a 0700 folder, atomically.
Result<void> save_refusal(const std::filesystem::path& path, const Refusal& r);
// No error if it is already gone.
Result<void> remove_refusal(const std::filesystem::path& path);

} // namespace ukey::client
