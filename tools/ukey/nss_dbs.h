// The browsers' NSS databases of this user, and the PKCS#11 modules each
// loads (its pkcs11.txt): Chromium's ~/.pki/nssdb and each Firefox profile.
// Shared by `ukey browser` and `ukey doctor`.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace ukey::cli {

struct NssModule {
    std::string name;    // name= (modutil's -delete NAME), not escaped
    std::string library; // library=, not escaped
};

struct NssDb {
    std::string browser; // "Chromium (~/.pki/nssdb)", "Firefox profile 'x'" (escaped)
    std::string dir;     // the folder (modutil -dbdir sql:DIR)
    bool exists = false; // it holds a database (pkcs11.txt)
    bool chromium = false;
    std::vector<NssModule> modules; // those with a library (not NSS's own)
};

// The file a path names, symlinks followed ("" when there is none).
std::string real_file(const std::string& path);

// Whether a registered library is ukey's module (by its file name: a moved
// or reinstalled ukey too).
inline bool names_ukey_module(const std::string& library)
{
    return library.find("libukey-pkcs11") != std::string::npos;
}

// Chromium's database (also when it does not exist yet) and every Firefox
// profile that holds one, under `home`; sorted by folder.
std::vector<NssDb> browser_dbs(const std::filesystem::path& home);

// Whether a p11-kit .module file (system or package) names ukey's module:
// then a database that loads p11-kit-proxy loads ukey too.
bool ukey_registered_with_p11kit();

// How a database loads ukey's module at `module` (a real path).
enum class UkeyIn { absent, direct, stale, via_p11kit };
UkeyIn ukey_in(const NssDb& db, const std::string& module, bool p11kit_registered);

} // namespace ukey::cli
