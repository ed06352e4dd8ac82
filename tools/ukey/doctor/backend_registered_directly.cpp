// P11: a backend's module also registered with p11-kit: every program that
// loads p11-kit-proxy (Firefox or Chromium set up for it) sees the Key a
// second time, straight from the driver, past ukey's PIN lockout.
#include "doctor.h"

#include "token/escape.h"


namespace ukey::cli::doctor {

namespace {

std::string registered_fix(const std::string& backend, const P11KitModule& m)
{
    const std::string file = escape::printable(m.file);
    const std::string name = escape::printable(m.name);
    if (m.file.empty() || m.file.rfind("/usr/share/", 0) == 0 || m.file.rfind("/etc/pkcs11/", 0) == 0)
        return "as root, `ukey backend hide " + escape::printable(backend) + "`: it writes /etc/pkcs11/modules/" +
               name + ".module, which hides '" + name + "' from every program and outlasts package updates";
    return "add the line `disable-in: p11-kit-proxy` to " + file + ", or remove that file";
}

} // namespace

UKEY_DOCTOR_CHECK(backend_registered_directly, "P11.backend-registered-directly", "P11",
                  "a backend's module is also registered with p11-kit for p11-kit-proxy",
                  "the driver's package registered it with p11-kit (a .module file), so programs using "
                  "p11-kit-proxy see the Key twice, once without ukey's PIN lockout",
                  "hide it: as root, `ukey backend hide BACKEND` (an override in /etc/pkcs11/modules that "
                  "enables it in no program)")
{
    for (const auto& b : f.backends) {
        const std::string lib = real_file(b.config.module);
        if (lib.empty())
            continue;
        for (const auto& m : f.p11kit_modules) {
            if (real_file(m.library) != lib)
                continue;
            out.push_back(finding(
                backend_registered_directly, Severity::warning, nullptr,
                "the backend '" + escape::printable(b.config.name) + "' (" + escape::printable(b.config.module) +
                    ") is also registered with p11-kit" +
                    (m.file.empty() ? " as '" + escape::printable(m.name) + "'" : " by " + escape::printable(m.file)) +
                    ", so every program using p11-kit-proxy (Firefox or Chromium set up for it) sees its Keys a "
                    "second time, straight from the driver and without ukey's PIN lockout",
                registered_fix(b.config.name, m)));
        }
    }
}

} // namespace ukey::cli::doctor
