// Files that decide what code runs: the config, backend modules, ukeyd's
// hooks. Like sudo with sudoers and sshd with authorized_keys, ukey refuses
// such a file when someone the process does not trust could have written it
// (docs/security.md). The one place that says who is trusted.
#pragma once

#include "token/result.h"

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace ukey {

// The process runs with more privilege than the user who started it:
// setuid, setgid or file capabilities (getauxval(AT_SECURE)). Its
// environment is the caller's, hence hostile: ukey reads every variable with
// secure_getenv, which answers NULL here.
bool privileged_process();

// In a privileged process, removes the variables by which backends decide
// what they load or whom they talk to (SoftHSM2's SOFTHSM2_CONF, OpenSC's
// OPENSC_CONF, which can name card-driver modules, pcsc-lite's socket):
// they read them with getenv, so the caller's values would reach code
// running with the program's privilege. Called before the first backend is
// loaded; a no-op elsewhere. Returns the names it removed.
std::vector<std::string> scrub_backend_environment();

// Whether an untrusted file is refused (true) or only warned about: refused
// in a privileged process, as root (ukeyd, sshd running pam_p11) and after
// refuse_untrusted_files(); a user's own process warns and goes on, since
// the only one it could hurt is that user.
bool untrusted_files_refused();
// ukeyd: refuse whatever user it runs as (it runs hooks and modules for
// other users' Keys).
void refuse_untrusted_files();

// Checks the file `path` names; `what` says what it is in the messages
// ("config file", "backend module", "hook command"). Symbolic links are
// followed by hand, and every folder a name is looked up in must be owned by
// root or by this process's user and not writable by group or others (a
// sticky folder such as /tmp is allowed when the entry in it is owned so);
// the file itself must be a regular file owned so, not writable by group or
// others. "This process's user" is the effective uid, but never the real uid
// of a privileged process (the caller it must be protected from).
//
// Returns the resolved path. A file that does not exist or cannot be looked
// up is an Error (its rv is CKR_FUNCTION_FAILED, the message "PATH: reason"),
// whatever the mode; a file others could have written is an Error naming the
// file and the fix when untrusted_files_refused(), else a logged warning.
Result<std::filesystem::path> trusted_file(const std::filesystem::path& path, std::string_view what);
// An Error of trusted_file() that is a refusal (not a missing file).
bool is_refusal(const Error& e);

} // namespace ukey
