// p11-kit's module registrations (.module files), as `ukey backend` reads and
// changes them: a backend's module that its package also registered with
// p11-kit is loaded by every program using p11-kit-proxy, which then sees
// the Key twice, once past ukey's PIN lockout (P11). `ukey backend add`
// hides such a registration with an override that enables the module in no
// program (`enable-in:` naming nothing); `ukey backend remove` takes the
// override away again.
#pragma once

#include "token/result.h"

#include <filesystem>
#include <string>
#include <vector>

namespace ukey::client {

// Where p11-kit reads .module files, lowest priority first: the packages'
// (/usr/share/p11-kit/modules), the administrator's (/etc/pkcs11/modules)
// and, for users other than root, the user's own
// (~/.config/pkcs11/modules). `write` is where overrides go: the
// administrator's for root, the user's for others.
struct P11KitDirs {
    std::vector<std::filesystem::path> read;
    std::filesystem::path write;
    std::filesystem::path module_dir; // where bare `module:` names are found
};
// This process's: as p11-kit reads them for this user.
P11KitDirs p11kit_dirs();

struct P11KitRegistration {
    std::string name;            // the .module file's name, without ".module"
    std::filesystem::path file;  // the file of highest priority for it
    std::string module;          // its `module:` value as written
    std::string library;         // that module's real path ("" if it does not exist)
    bool enabled = true;         // p11-kit-proxy loads it (no enable-in, not disabled for it)
    bool hidden_by_ukey = false; // an override of `ukey backend add` is in place
    std::string hidden_for;      // the backend named in that override
};

// Every registration (a name in any of dirs.read), settings merged by
// priority. Bounded: at most 256 files of 64 KiB each are read.
std::vector<P11KitRegistration> p11kit_registrations(const P11KitDirs& dirs);

// Hides `r` from every program (an override in dirs.write saying which
// backend it is for); nothing to do if ukey already hid it. The error (rv
// CKR_OK) names the file and the reason.
Result<void> hide_registration(const P11KitDirs& dirs, const P11KitRegistration& r, const std::string& backend);
// Takes ukey's override for `r` away (the whole file if ukey wrote it, else
// only ukey's two lines); nothing to do if there is none.
Result<void> unhide_registration(const P11KitDirs& dirs, const P11KitRegistration& r);

} // namespace ukey::client
