// P11: a backend's module also registered with p11-kit: every program that
// loads p11-kit-proxy (Firefox or Chromium set up for it) sees the Key a
// second time, straight from the driver, past ukey's PIN lockout.
#include "doctor.h"

#include "token/escape.h"


namespace ukey::cli::doctor {

namespace {

std::string registered_fix(const P11KitModule& m)
{
    const std::string file = escape::printable(m.file);
    const std::string name = escape::printable(m.name);
    if (m.file.empty())
        return "disable p11-kit's module '" + name + "' for p11-kit-proxy (`disable-in: p11-kit-proxy` in its .module file)";
    if (m.file.rfind("/usr/share/", 0) == 0)
        return "as root, write the line `disable-in: p11-kit-proxy` to /etc/pkcs11/modules/" + name +
               ".module (it overrides " + file + " and outlasts package updates), or remove " + file;
    return "add the line `disable-in: p11-kit-proxy` to " + file + ", or remove that file";
}

} // namespace

UKEY_DOCTOR_CHECK(backend_registered_directly, "P11.backend-registered-directly", "P11",
                  "a backend's module is also registered with p11-kit for p11-kit-proxy",
                  "the driver's package registered it with p11-kit (a .module file), so programs using "
                  "p11-kit-proxy see the Key twice, once without ukey's PIN lockout",
                  "disable it for p11-kit-proxy (`disable-in: p11-kit-proxy`, in /etc/pkcs11/modules/NAME.module) "
                  "or remove its .module file")
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
                registered_fix(m)));
        }
    }
}

} // namespace ukey::cli::doctor
