// A backend (the Key's own PKCS#11 driver) that does not load or start,
// loaded on its own so that its exact error can be named.
#include "doctor.h"

#include "token/escape.h"

namespace ukey::cli::doctor {

UKEY_DOCTOR_CHECK(backend_fails, "P2.backend-fails", "P2", "a backend module does not load or initialise",
                  "the Key's driver is missing, broken, built for another system, or its own configuration is "
                  "wrong",
                  "reinstall the driver, or correct its module path in ukey.conf; the exact error is shown")
{
    for (const auto& b : f.backends) {
        if (b.load_error.empty())
            continue;
        const std::string name = escape::printable(b.config.name);
        out.push_back(finding(backend_fails, b.config.optional ? Severity::warning : Severity::problem, nullptr,
                              "the backend '" + name + "' (" + escape::printable(b.config.module) +
                                  ") does not work: " + escape::printable(b.load_error) +
                                  (b.config.optional
                                       ? "; it is optional, so its Keys are only left out"
                                       : "; it is not optional, so no application can use any Key through ukey"),
                              "reinstall the Key's driver, or correct the module of '" + name + "' in " +
                                  escape::printable(f.config_path)));
    }
}

} // namespace ukey::cli::doctor
