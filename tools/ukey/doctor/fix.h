// ukey doctor --fix: runs a finding's remedy (a safe fix it names: start
// pcscd, resume a renewal) after asking on the terminal, or with --yes.
#pragma once

#include "doctor.h"

namespace ukey::cli::doctor {

struct FixOptions {
    std::string module_path; // --module, passed on to ukey
    std::string pin_file;    // --pin-file, passed on to a remedy that needs the PIN
};

// Runs the remedy with its output on stderr (stdout stays the report's);
// its exit status, or -1 when it could not be started.
int apply(const Finding& f, const FixOptions& o);

// The remedy as it is shown: "ukey renew --resume 42".
std::string remedy_text(const Finding& f);

} // namespace ukey::cli::doctor
