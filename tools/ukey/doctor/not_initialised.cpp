// P2: a blank Key (what vendors' tools call "initialise the USB Key", 80090020).
#include "doctor.h"

#include <algorithm>

namespace ukey::cli::doctor {

UKEY_DOCTOR_KEY_CHECK(not_initialised, "P2.not-initialised", "P2", "a Key that is not initialised",
                      "a new or wiped Key holds no PIN and no certificate yet",
                      "`ukey init` sets its PINs; then enrol for a certificate (`ukey enroll`) or ask the issuer")
{
    if (k.info.initialized())
        return;
    // Beside Keys in use, a blank one is only noted (SoftHSM2 always shows
    // one, for the next token).
    const bool any_in_use =
        std::any_of(f.keys.begin(), f.keys.end(), [](const KeyFacts& o) { return o.info.initialized(); });
    out.push_back(finding(not_initialised, any_in_use ? Severity::note : Severity::warning, &k,
                          "this Key is not initialised: it has no PIN and no certificate yet",
                          "set it up with " + command(f, k, "ukey init") +
                              " (it wipes the Key), or hand it back to its issuer"));
}

} // namespace ukey::cli::doctor
