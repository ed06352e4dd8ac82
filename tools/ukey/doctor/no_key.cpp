// P1: ukey works but shows no Key.
#include "doctor.h"

#include <PCSC/winscard.h>

namespace ukey::cli::doctor {

UKEY_DOCTOR_CHECK(no_key_found, "P1.no-key", "P1", "no Key is present",
                  "the Key is not plugged in, or its backend does not recognise it",
                  "plug it in; if it is in, check that ukey.conf names the driver its issuer gave")
{
    if (!f.config || !f.module_error.empty() || !f.keys.empty())
        return;
    // Said better by P1.pcscd-down and P1.no-reader.
    if (f.pcsc.needed &&
        (f.pcsc.establish != SCARD_S_SUCCESS || f.pcsc.list == static_cast<long>(SCARD_E_NO_READERS_AVAILABLE)))
        return;
    out.push_back(finding(no_key_found, Severity::warning, nullptr,
                          f.pcsc.readers.empty()
                              ? std::string("no Key found: none is plugged in, or no backend recognises it")
                              : "no Key found, though pcscd sees " + std::to_string(f.pcsc.readers.size()) +
                                    " reader(s): the card in it is not one the configured backends know",
                          "plug the Key in; if it is in, add its issuer's driver as a [[backend]] in ukey.conf "
                          "(docs/config.md)"));
}

} // namespace ukey::cli::doctor
