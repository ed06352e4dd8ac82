// P4: ukey cannot trust or keep the Key's PIN counts, and treats it as locked.
#include "doctor.h"
#include "token/docs.h"

namespace ukey::cli::doctor {

UKEY_DOCTOR_KEY_CHECK(pin_state_damaged, "P4.pin-state-damaged", "P4", "ukey cannot trust or keep the Key's PIN counts",
                      "the PIN state file or the policy on the Key was damaged, or the state folder cannot be "
                      "written",
                      "the log says which file; " UKEY_DOC("pin-policy.md") " (\"Recovery\") says how to start the count again")
{
    if (!k.info.initialized() || counts_usable(k))
        return;
    const bool unavailable = k.info.pin->flags & UKEY_PIN_STATE_UNAVAILABLE;
    out.push_back(finding(pin_state_damaged, Severity::problem, &k,
                          unavailable ? "ukey cannot keep this Key's PIN counts (no state folder it can write), so "
                                        "it treats the PIN as locked"
                                      : "this Key's PIN counts are damaged (state file or the policy on the Key), so "
                                        "ukey treats the PIN as locked rather than allow unlimited guesses",
                          unavailable ? "make sure your home folder exists and is yours, or set state_dir in ukey.conf"
                                      : "the log (journalctl, or ukey's log file) names the damaged file; "
                                        UKEY_DOC("pin-policy.md") " (\"Recovery\") says how to reset it"));
}

} // namespace ukey::cli::doctor
