// P3: wrong PINs were entered: fewer tries are left than the limit.
#include "doctor.h"

namespace ukey::cli::doctor {

UKEY_DOCTOR_KEY_CHECK(pin_tries_low, "P3.pin-tries-low", "P3", "wrong user PINs were entered, and fewer tries are left",
                      "someone typed a wrong PIN (a wrong PIN saved in a browser or a script tries again by itself)",
                      "the right PIN restores all tries: `ukey pin verify` checks it and says how many are left")
{
    const CK_FLAGS fl = k.info.token.flags;
    if (!counts_usable(k) || (fl & CKF_USER_PIN_LOCKED))
        return;
    const std::string fix = "check the PIN with " + command(f, k, "ukey pin verify") +
                            " (the right PIN restores all tries); remove any wrong PIN a browser or program has saved";
    const auto* p = k.info.pin ? &*k.info.pin : nullptr;
    if (p && p->userTriesLeft != CK_UNAVAILABLE_INFORMATION && p->userMaxTries != CK_UNAVAILABLE_INFORMATION) {
        if (p->userTriesLeft >= p->userMaxTries)
            return;
        const CK_ULONG left = p->userTriesLeft;
        out.push_back(finding(pin_tries_low, left <= 1 ? Severity::problem : Severity::warning, &k,
                              "a wrong user PIN was entered: " + std::to_string(left) + " of " +
                                  std::to_string(p->userMaxTries) + (left == 1 ? " try is" : " tries are") +
                                  " left before the PIN locks",
                              fix));
    } else if (fl & (CKF_USER_PIN_FINAL_TRY | CKF_USER_PIN_COUNT_LOW)) {
        const bool final = fl & CKF_USER_PIN_FINAL_TRY;
        out.push_back(finding(pin_tries_low, final ? Severity::problem : Severity::warning, &k,
                              final ? "a wrong user PIN was entered: one try is left before the PIN locks"
                                    : "wrong user PINs were entered: the Key says few tries are left",
                              fix));
    }
}

} // namespace ukey::cli::doctor
