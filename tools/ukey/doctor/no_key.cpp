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
    // A card in a reader that no backend shows: P1.card-not-recognised.
    for (const auto& r : f.pcsc.readers)
        if (r.card)
            return;
    out.push_back(finding(no_key_found, Severity::warning, nullptr,
                          "no Key found: none is plugged in, or no backend recognises it",
                          "plug the Key in; if it is in, add its issuer's driver as a [[backend]] in ukey.conf "
                          "(ukey.conf(5))"));
}

} // namespace ukey::cli::doctor
