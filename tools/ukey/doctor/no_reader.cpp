// P1: pcscd runs, but no reader is connected.
#include "doctor.h"

#include <PCSC/winscard.h>

namespace ukey::cli::doctor {

UKEY_DOCTOR_CHECK(no_reader, "P1.no-reader", "P1", "pcscd runs but sees no card reader",
                  "the Key is not plugged in, not all the way, or its reader is not supported by pcscd's drivers",
                  "plug the Key in (another USB port helps); `pcsc_scan` shows what pcscd sees")
{
    if (!f.pcsc.needed || f.pcsc.establish != SCARD_S_SUCCESS ||
        f.pcsc.list != static_cast<long>(SCARD_E_NO_READERS_AVAILABLE))
        return;
    out.push_back(finding(no_reader, Severity::warning, nullptr,
                          "pcscd runs but sees no card reader: the Key is not plugged in, or pcscd has no driver "
                          "for it",
                          "plug the Key in (try another USB port); if it still does not show, `pcsc_scan` "
                          "(package pcsc-tools) shows what pcscd sees"));
}

} // namespace ukey::cli::doctor
