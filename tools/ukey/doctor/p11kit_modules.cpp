// The PKCS#11 modules p11-kit-proxy loads, as p11-kit itself reads its
// configuration (system, package and, for users other than root, user
// .module files, merged by p11-kit's own rules, enable-in and disable-in
// applied): Firefox, Chromium and other programs set up with p11-kit-proxy see
// every token of each.
#define P11_KIT_FUTURE_UNSTABLE_API 1 // p11_kit_set_progname
#include "doctor.h"
#include "run_tool.h"

#include "client/p11kit_config.h"
#include "token/escape.h"

#include <p11-kit/p11-kit.h>

#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <set>
#include <sstream>

namespace ukey::cli::doctor {

namespace {

struct P11KitFree {
    void operator()(char* p) const { std::free(p); }
};
using P11KitString = std::unique_ptr<char, P11KitFree>;

// Where p11-kit finds the .module file named NAME: the folder of highest
// priority holding it (client::p11kit_dirs(), as `ukey backend` reads them)
// is the one to change.
std::string dot_module_file(const std::string& name)
{
    const auto dirs = client::p11kit_dirs().read; // lowest priority first
    std::error_code ec;
    for (auto d = dirs.rbegin(); d != dirs.rend(); ++d)
        for (const char* suffix : {".module", ""})
            if (std::filesystem::is_regular_file(*d / (name + suffix), ec))
                return (*d / (name + suffix)).string();
    return {};
}

// Whether `m` is a driver of its own: not p11-kit's trust store or RPC
// client, not ukey's module, not a backend's (P11.backend-registered-directly
// speaks of those).
bool foreign(const Facts& f, const P11KitModule& m)
{
    const std::string base = std::filesystem::path(m.library).filename().string();
    if (base == "p11-kit-trust.so" || base == "p11-kit-client.so" || names_ukey_module(base))
        return false;
    const std::string lib = real_file(m.library);
    if (lib.empty())
        return true;
    if (lib == real_file(f.module_path))
        return false;
    for (const auto& b : f.backends)
        if (lib == real_file(b.config.module))
            return false;
    return true;
}

// `p11-kit list-modules`: "NAME: FILE" lines, each module's tokens under it
// ("    token: LABEL", then "        manufacturer: ..." and
// "        serial-number: ..."). What a driver reports is hostile: lines and
// counts are bounded, and nothing is shown unescaped.
void parse_list_modules(const std::string& text, Facts& f, const std::set<std::string>& wanted)
{
    std::istringstream in(text);
    P11KitModule* mod = nullptr;
    P11KitModule::Token* tok = nullptr;
    auto value = [](const std::string& line, const char* key) -> std::optional<std::string> {
        const std::size_t at = line.find_first_not_of(' ');
        if (at == std::string::npos || line.compare(at, std::strlen(key), key) != 0)
            return std::nullopt;
        std::string v = line.substr(at + std::strlen(key));
        v.erase(v.find_last_not_of(' ') + 1);
        return v.substr(0, 256);
    };
    for (std::string line; std::getline(in, line);) {
        if (!line.empty() && line[0] != ' ') {
            const std::string name = line.substr(0, line.find(':'));
            mod = nullptr;
            tok = nullptr;
            for (auto& m : f.p11kit_modules)
                if (m.name == name && wanted.count(name))
                    mod = &m;
        } else if (!mod) {
            continue;
        } else if (auto label = value(line, "token: ")) {
            tok = mod->tokens.size() < 64 ? &mod->tokens.emplace_back() : nullptr;
            if (tok)
                tok->label = *label;
        } else if (!tok) {
            continue;
        } else if (auto v = value(line, "manufacturer: ")) {
            tok->manufacturer = *v;
        } else if (auto v = value(line, "serial-number: ")) {
            tok->serial = *v;
        }
    }
}

} // namespace

void look_at_p11kit_tokens(Facts& f)
{
    std::set<std::string> wanted;
    for (const auto& m : f.p11kit_modules)
        if (foreign(f, m))
            wanted.insert(m.name);
    if (wanted.empty())
        return; // the usual case: nothing to load
    // A child, with a time limit: a driver may hang on its reader or crash.
    // p11-kit names itself "p11-kit" there, so a module disabled only in
    // that program is missed (rare; p11-kit's own tool is the one to list).
    const auto out = run_tool({{"/usr/bin/p11-kit", "list-modules"}, {}, 20000, 1u << 18});
    if (out)
        parse_list_modules(*out, f, wanted);
}

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
        f.p11kit_modules.push_back({name.get(), file.get(), dot_module_file(name.get()), {}});
    }
    p11_kit_modules_release(mods);
}

} // namespace ukey::cli::doctor
