// P11: a browser's NSS database that loads a backend's module itself (added
// by the vendor's installer, or by hand before ukey): the browser shows the
// Key a second time, straight from the driver, past ukey's PIN lockout.
#include "doctor.h"

#include "token/escape.h"

#include <filesystem>

namespace ukey::cli::doctor {

namespace {

// NSS looks up a bare library= name as dlopen does; an absolute one is the
// file. Either way the same file as the backend's module?
bool same_library(const std::string& nss_library, const std::string& module)
{
    if (nss_library.find('/') == std::string::npos)
        return nss_library == std::filesystem::path(module).filename().string();
    const std::string a = real_file(nss_library);
    return !a.empty() && a == real_file(module);
}

} // namespace

UKEY_DOCTOR_CHECK(browser_loads_backend, "P11.browser-loads-backend", "P11",
                  "a browser loads a backend's module itself, beside ukey",
                  "the Key's installer (or someone before ukey) added the driver to the browser's security devices",
                  "remove that module from the browser (Firefox: Settings, Security Devices, Unload), the browser "
                  "closed")
{
    for (const auto& db : f.browsers)
        for (const auto& m : db.modules)
            for (const auto& b : f.backends) {
                const std::string& lib = m.library;
                if (!same_library(lib, b.config.module))
                    continue;
                const std::string dir = escape::printable(db.dir);
                out.push_back(finding(
                    browser_loads_backend, Severity::warning, nullptr,
                    db.browser + " loads the backend '" + escape::printable(b.config.name) +
                        "' (" + escape::printable(lib) +
                        ") itself, so it shows its Keys a second time, straight from the driver and without "
                        "ukey's PIN lockout",
                    "with the browser closed, `modutil -dbdir sql:" + dir + " -list` names it and `modutil -dbdir sql:" +
                        dir + " -delete NAME` removes it (Firefox: Settings, Security Devices, Unload)"));
            }
}

} // namespace ukey::cli::doctor
