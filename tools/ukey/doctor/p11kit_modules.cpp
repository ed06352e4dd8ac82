// The PKCS#11 modules p11-kit-proxy loads, as p11-kit itself reads its
// configuration (system, package and, for users other than root, user
// .module files, merged by p11-kit's own rules, enable-in and disable-in
// applied): Firefox, Chromium and other programs set up with p11-kit-proxy see
// every token of each.
#define P11_KIT_FUTURE_UNSTABLE_API 1 // p11_kit_set_progname
#include "doctor.h"

#include "token/escape.h"

#include <p11-kit/p11-kit.h>

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <memory>

namespace ukey::cli::doctor {

namespace {

struct P11KitFree {
    void operator()(char* p) const { std::free(p); }
};
using P11KitString = std::unique_ptr<char, P11KitFree>;

// Where p11-kit finds the .module file named NAME: the user's own first
// (p11-kit reads those only for users other than root), then the
// administrator's, then the packages' (the directories Debian's p11-kit
// reads; the first holding the file is the one to change).
std::string dot_module_file(const std::string& name)
{
    std::vector<std::filesystem::path> dirs;
    const char* home = secure_getenv("HOME");
    if (getuid() != 0 && home && *home)
        dirs.emplace_back(std::filesystem::path(home) / ".config/pkcs11/modules");
    dirs.emplace_back("/etc/pkcs11/modules");
    dirs.emplace_back("/usr/share/p11-kit/modules");
    std::error_code ec;
    for (const auto& d : dirs)
        for (const char* suffix : {".module", ""})
            if (std::filesystem::is_regular_file(d / (name + suffix), ec))
                return (d / (name + suffix)).string();
    return {};
}

} // namespace

void look_at_p11kit(Facts& f)
{
    // p11-kit-proxy's view in a program no .module file names: modules
    // disabled for it (disable-in: p11-kit-proxy) are not loaded.
    p11_kit_be_quiet();
    p11_kit_set_progname("p11-kit-proxy");
    CK_FUNCTION_LIST** mods = p11_kit_modules_load(nullptr, P11_KIT_MODULE_UNMANAGED);
    p11_kit_set_progname(nullptr);
    if (!mods) {
        const char* why = p11_kit_message();
        f.p11kit_error = escape::printable(why ? why : "p11-kit cannot read its configuration");
        return;
    }
    for (std::size_t i = 0; mods[i] && i < 256; ++i) {
        P11KitString name(p11_kit_module_get_name(mods[i]));
        P11KitString file(p11_kit_module_get_filename(mods[i]));
        if (!name || !file)
            continue; // a remote module: no library on this machine
        // enable-in: only in the programs it names, and p11-kit checks it
        // against the program's own name when it loads the module (so
        // "p11-kit-proxy" there enables nothing, as of p11-kit 0.24/0.25).
        if (P11KitString only_in(p11_kit_config_option(mods[i], "enable-in")); only_in)
            continue;
        f.p11kit_modules.push_back({name.get(), file.get(), dot_module_file(name.get())});
    }
    p11_kit_modules_release(mods);
}

} // namespace ukey::cli::doctor
