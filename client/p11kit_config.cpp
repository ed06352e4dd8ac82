// p11-kit's .module files: read, and overridden for `ukey backend` (see
// p11kit_config.h). The format is p11-kit's: "key: value" lines, '#'
// comments. A file of a higher-priority folder overrides the same name's
// settings in a lower one.
#include "client/p11kit_config.h"

#include "client/public_file.h"
#include "token/config.h"
#include "token/files.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <sstream>

namespace ukey::client {

namespace {

namespace fs = std::filesystem;

// The first line of an override ukey wrote whole, and the line ukey adds in
// front of its `enable-in:` in an administrator's file; both name the
// backend, after the colon.
constexpr std::string_view whole_marker = "# Written by `ukey backend add` for the backend:";
constexpr std::string_view line_marker = "# Hidden by `ukey backend add` for the backend:";
constexpr std::size_t max_files = 256;
constexpr std::size_t max_file_size = 64 * 1024;

Error refused(const fs::path& file, const std::string& why)
{
    return Error{CKR_OK, file.string() + ": " + why};
}

std::string trim(std::string s)
{
    s.erase(0, s.find_first_not_of(" \t\r"));
    s.erase(s.find_last_not_of(" \t\r") + 1);
    return s;
}

struct ModuleFile {
    std::map<std::string, std::string> settings; // key -> value, trimmed
    std::string hidden_for; // after one of the markers, if present
    bool ours = false;      // written whole by ukey
};

ModuleFile parse_module_file(const std::string& text)
{
    ModuleFile m;
    std::istringstream in(text);
    bool first = true;
    for (std::string line; std::getline(in, line); first = false) {
        const bool whole = line.rfind(whole_marker, 0) == 0;
        if (whole || line.rfind(line_marker, 0) == 0) {
            m.ours = m.ours || (first && whole);
            m.hidden_for = trim(line.substr((whole ? whole_marker : line_marker).size()));
            continue;
        }
        const std::string t = trim(line);
        if (t.empty() || t[0] == '#')
            continue;
        const auto colon = t.find(':');
        if (colon == std::string::npos)
            continue; // p11-kit refuses such a file; it loads nothing from it
        m.settings[trim(t.substr(0, colon))] = trim(t.substr(colon + 1));
    }
    return m;
}

// Whether a comma- or space-separated list names `word`.
bool lists(const std::string& list, std::string_view word)
{
    std::string item;
    std::istringstream in(list);
    while (std::getline(in, item, ','))
        for (std::istringstream words(item); words >> item;)
            if (item == word)
                return true;
    return false;
}

// 0644 whatever the umask: p11-kit reads these files in every user's
// programs; a file they cannot read is skipped, and the module shown again.
Result<void> write_module_file(const fs::path& target, const std::string& text)
{
    if (auto w = write_file(target.string(), {reinterpret_cast<const unsigned char*>(text.data()), text.size()},
                            0644);
        !w)
        return refused(target, w.error().message);
    return {};
}

std::string real_path(const fs::path& p)
{
    std::error_code ec;
    auto r = fs::canonical(p, ec);
    return ec ? std::string() : r.string();
}

} // namespace

P11KitDirs p11kit_dirs()
{
    P11KitDirs d;
    d.read = {"/usr/share/p11-kit/modules", "/etc/pkcs11/modules"};
    d.write = "/etc/pkcs11/modules";
    d.module_dir = system_module_dir();
    // p11-kit reads a user's own .module files for users other than root.
    const char* home = secure_getenv("HOME");
    if (getuid() != 0 && home && home[0] == '/') {
        d.read.push_back(fs::path(home) / ".config/pkcs11/modules");
        d.write = d.read.back();
    }
    return d;
}

std::vector<P11KitRegistration> p11kit_registrations(const P11KitDirs& dirs)
{
    // name -> (file of highest priority, its parsed text merged over lower ones)
    std::map<std::string, std::pair<fs::path, ModuleFile>> by_name;
    std::size_t files = 0;
    for (const auto& dir : dirs.read) {
        std::error_code ec;
        std::vector<fs::path> entries;
        for (fs::directory_iterator it(dir, ec), end; !ec && it != end && entries.size() < max_files; it.increment(ec))
            entries.push_back(it->path());
        std::sort(entries.begin(), entries.end());
        for (const auto& path : entries) {
            const std::string fname = path.filename().string();
            // p11-kit reads "*.module" only, and skips hidden files.
            if (fname.size() <= 7 || fname.compare(fname.size() - 7, 7, ".module") != 0 || fname[0] == '.')
                continue;
            if (++files > max_files)
                break;
            auto text = read_file(path, max_file_size);
            if (!text)
                continue; // unreadable: p11-kit skips it too
            ModuleFile m = parse_module_file(*text);
            auto& [file, merged] = by_name[fname.substr(0, fname.size() - 7)];
            file = path;
            for (auto& [k, v] : m.settings)
                merged.settings[k] = v;
            merged.hidden_for = m.hidden_for;
            merged.ours = m.ours;
        }
    }
    std::vector<P11KitRegistration> out;
    for (const auto& [name, fm] : by_name) {
        const auto& [file, m] = fm;
        auto module = m.settings.find("module");
        if (module == m.settings.end() || module->second.empty())
            continue; // a remote module, or a file that only sets options
        P11KitRegistration r;
        r.name = name;
        r.file = file;
        r.module = module->second;
        const fs::path lib = r.module.find('/') == std::string::npos ? dirs.module_dir / r.module : fs::path(r.module);
        r.library = real_path(lib);
        auto enable_in = m.settings.find("enable-in");
        auto disable_in = m.settings.find("disable-in");
        r.enabled = enable_in == m.settings.end() &&
                    (disable_in == m.settings.end() || !lists(disable_in->second, "p11-kit-proxy"));
        r.hidden_by_ukey = !m.hidden_for.empty();
        r.hidden_for = m.hidden_for;
        out.push_back(std::move(r));
    }
    return out;
}

Result<void> hide_registration(const P11KitDirs& dirs, const P11KitRegistration& r, const std::string& backend)
{
    if (r.hidden_by_ukey)
        return {};
    const fs::path target = dirs.write / (r.name + ".module");
    if (auto made = make_public_dirs(dirs.write.string()); !made)
        return refused(dirs.write, made.error().message);
    auto existing = read_file_if_exists(target, max_file_size);
    if (!existing)
        return refused(target, existing.error().message);
    std::string text;
    if (*existing) {
        // The administrator's own override: kept, with ukey's two lines
        // last (p11-kit takes the last value of a key).
        text = **existing;
        if (!text.empty() && text.back() != '\n')
            text += '\n';
        text += std::string(line_marker) + " " + backend + "\nenable-in:\n";
    } else {
        // A copy of what it overrides (p11-kit may read an override as the
        // whole registration), loaded by no program.
        text = std::string(whole_marker) + " " + backend + "\n" +
               "# It shows this backend's Keys through ukey only (libukey-pkcs11.so), once,\n"
               "# with ukey's PIN lockout. `ukey backend remove " + backend + "` deletes this file.\n" +
               "module: " + r.module + "\nenable-in:\n";
    }
    return write_module_file(target, text);
}

Result<void> unhide_registration(const P11KitDirs& dirs, const P11KitRegistration& r)
{
    const fs::path target = dirs.write / (r.name + ".module");
    auto existing = read_file_if_exists(target, max_file_size);
    if (!existing)
        return refused(target, existing.error().message);
    if (!*existing)
        return {};
    const ModuleFile m = parse_module_file(**existing);
    if (m.hidden_for.empty())
        return {};
    if (m.ours) {
        if (unlink(target.c_str()) != 0 && errno != ENOENT)
            return refused(target, std::strerror(errno));
        return {};
    }
    // Only ukey's two lines go: the marker and the `enable-in:` after it.
    std::istringstream in(**existing);
    std::string text;
    bool skip_next = false;
    for (std::string line; std::getline(in, line);) {
        if (line.rfind(line_marker, 0) == 0) {
            skip_next = true;
            continue;
        }
        if (skip_next && trim(line) == "enable-in:") {
            skip_next = false;
            continue;
        }
        skip_next = false;
        text += line + "\n";
    }
    return write_module_file(target, text);
}

} // namespace ukey::client
