// A ukey.conf that cannot be read or parsed.
#include "doctor.h"

#include "token/escape.h"

namespace ukey::cli::doctor {

UKEY_DOCTOR_CHECK(config_invalid, "setup.config-invalid", "P2", "the configuration file cannot be used",
                  "a typing error, a wrong value, or a file other users can write (refused: it names the code "
                  "ukey loads)",
                  "correct what the message names (ukey.conf(5))")
{
    if (f.config || f.config_missing)
        return;
    out.push_back(finding(config_invalid, Severity::problem, nullptr,
                          "the configuration cannot be used: " + escape::printable(f.config_error),
                          "correct it (ukey.conf(5)), then run `ukey doctor` again"));
}

} // namespace ukey::cli::doctor
