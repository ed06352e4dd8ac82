// ukey's own PKCS#11 module does not start (for a reason other than a
// backend that backend_fails names).
#include "doctor.h"

#include "token/escape.h"

namespace ukey::cli::doctor {

UKEY_DOCTOR_CHECK(module_fails, "setup.module-fails", "P2", "ukey's own module does not start",
                  "ukey is not installed where the tools look, or its state folder cannot be used",
                  "the message says which; --module or UKEY_MODULE name another module")
{
    if (f.module_error.empty() || !f.config)
        return;
    out.push_back(finding(module_fails, Severity::problem, nullptr,
                          "ukey's module does not start: " + escape::printable(f.module_error),
                          "reinstall ukey, or name its module with --module or UKEY_MODULE"));
}

} // namespace ukey::cli::doctor
