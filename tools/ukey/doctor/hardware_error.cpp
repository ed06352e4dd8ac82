// P2: a Key whose backend sees the card but cannot read its token: a
// hardware error, a card pulled out while being read, or a card the driver
// does not know (pcscd's view of that is P1.card-not-recognised).
#include "doctor.h"

#include "token/ckr_name.h"
#include "token/escape.h"

#include <algorithm>

namespace ukey::cli::doctor {

UKEY_DOCTOR_CHECK(hardware_error, "P2.hardware-error", "P2",
                  "a Key is there but its backend cannot read it (a hardware error)",
                  "the Key is broken or worn out, badly plugged in, or the card is not one its driver knows",
                  "plug it in again (another USB port); if it persists, the Key is broken: ask its issuer for a new "
                  "one")
{
    for (const auto& s : f.slot_failures) {
        const std::string reader = escape::printable(s.reader);
        // A card pcscd shows and no backend recognises: P1 says which driver.
        if (s.rv == CKR_TOKEN_NOT_RECOGNIZED &&
            std::any_of(f.pcsc.readers.begin(), f.pcsc.readers.end(),
                        [&](const Reader& r) { return r.card && !r.name.empty() && s.reader.find(r.name) != std::string::npos; }))
            continue;
        const std::string where = "the Key in the reader '" + reader + "'" +
                                  (s.backend.empty() ? std::string() : " (backend '" + escape::printable(s.backend) + "')");
        std::string what, fix;
        switch (s.rv) {
        case CKR_DEVICE_REMOVED:
            what = where + " went away while it was being read (" + ckr_name(s.rv) +
                   "): it is loose, or its connection breaks";
            fix = "plug it in firmly (another USB port, no hub) and run `ukey doctor` again";
            break;
        case CKR_TOKEN_NOT_RECOGNIZED:
            what = where + " is not one its driver knows (" + ckr_name(s.rv) + "), or its chip does not answer "
                   "as it should";
            fix = "check that this is the Key meant for this driver; if it is, the Key is damaged: ask its issuer "
                  "for a new one";
            break;
        default:
            what = where + " reports a hardware error (" + ckr_name(s.rv) + "): no application can use it";
            fix = "plug it in again (another USB port); if it persists, the Key is broken: ask its issuer for a new "
                  "one";
        }
        out.push_back(finding(hardware_error, Severity::problem, nullptr, what, fix));
    }
}

} // namespace ukey::cli::doctor
