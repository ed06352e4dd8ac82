#include "nss_dbs.h"

#include "token/escape.h"

#include <algorithm>
#include <fstream>

namespace ukey::cli {

namespace {

// The modules of an NSS database's pkcs11.txt (at most 1 MiB read): blocks
// of key=value lines; the block's library= and name= are what counts.
std::vector<NssModule> nss_modules(const std::filesystem::path& dir)
{
    std::vector<NssModule> out;
    std::ifstream in(dir / "pkcs11.txt");
    NssModule m;
    auto flush = [&] {
        if (!m.library.empty() && out.size() < 64)
            out.push_back(m);
        m = {};
    };
    std::string line;
    for (std::size_t read = 0; in && read < (1u << 20) && std::getline(in, line);) {
        read += line.size() + 1;
        while (!line.empty() && (line.back() == '\r' || line.back() == ' '))
            line.pop_back();
        if (line.rfind("library=", 0) == 0) {
            flush();
            m.library = line.substr(8);
        } else if (line.rfind("name=", 0) == 0) {
            m.name = line.substr(5);
        }
    }
    flush();
    return out;
}

} // namespace

std::string real_file(const std::string& path)
{
    std::error_code ec;
    auto p = std::filesystem::canonical(path, ec);
    return ec ? std::string() : p.string();
}

std::vector<NssDb> browser_dbs(const std::filesystem::path& home)
{
    std::vector<NssDb> dbs;
    std::error_code ec;
    NssDb chromium;
    chromium.browser = "Chromium (~/.pki/nssdb)";
    chromium.dir = (home / ".pki/nssdb").string();
    chromium.chromium = true;
    chromium.exists = std::filesystem::is_regular_file(home / ".pki/nssdb/pkcs11.txt", ec);
    if (chromium.exists)
        chromium.modules = nss_modules(home / ".pki/nssdb");
    dbs.push_back(std::move(chromium));
    std::filesystem::directory_iterator it(home / ".mozilla/firefox", ec), end;
    for (int n = 0; !ec && it != end && n < 32; it.increment(ec), ++n)
        if (std::filesystem::is_regular_file(it->path() / "pkcs11.txt", ec)) {
            NssDb db;
            db.browser = "Firefox profile '" + escape::printable(it->path().filename().string()) + "'";
            db.dir = it->path().string();
            db.exists = true;
            db.modules = nss_modules(it->path());
            dbs.push_back(std::move(db));
        }
    std::sort(dbs.begin(), dbs.end(), [](const auto& a, const auto& b) { return a.dir < b.dir; });
    return dbs;
}

bool ukey_registered_with_p11kit()
{
    std::error_code ec;
    std::filesystem::directory_iterator end;
    for (const char* dir : {"/usr/share/p11-kit/modules", "/etc/pkcs11/modules"}) {
        std::filesystem::directory_iterator m(dir, ec);
        for (int n = 0; !ec && m != end && n < 256; m.increment(ec), ++n) {
            std::ifstream in(m->path());
            std::string text(4096, '\0');
            in.read(text.data(), static_cast<std::streamsize>(text.size()));
            text.resize(static_cast<std::size_t>(in.gcount()));
            if (text.find("libukey-pkcs11") != std::string::npos)
                return true;
        }
    }
    return false;
}

UkeyIn ukey_in(const NssDb& db, const std::string& module, bool p11kit_registered)
{
    UkeyIn found = UkeyIn::absent;
    for (const auto& m : db.modules) {
        if (names_ukey_module(m.library)) {
            if (!module.empty() && real_file(m.library) == module)
                return UkeyIn::direct;
            found = UkeyIn::stale;
        } else if (p11kit_registered && m.library.find("p11-kit-proxy") != std::string::npos &&
                   found == UkeyIn::absent) {
            found = UkeyIn::via_p11kit;
        }
    }
    return found;
}

} // namespace ukey::cli
