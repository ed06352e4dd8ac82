// P3: wrong PINs were entered: fewer tries are left than the limit.
#include "doctor.h"

namespace ukey::cli::doctor {

extern const Check pin_tries_low;
const Check pin_tries_low{
    "P3.pin-tries-low", "P3", "wrong user PINs were entered, and fewer tries are left",
    "someone typed a wrong PIN (a wrong PIN saved in a browser or a script tries again by itself)",
    "the right PIN restores all tries: `ukey pin verify` checks it and says how many are left",
    [](const Facts& f, std::vector<Finding>& out) {
        for (const auto& k : f.keys) {
            const CK_FLAGS fl = k.info.token.flags;
            if (!k.info.initialized() || (fl & CKF_USER_PIN_LOCKED))
                continue;
            if (k.info.pin && !(k.info.pin->flags & UKEY_PIN_STATE_DAMAGED) &&
                k.info.pin->userTriesLeft != CK_UNAVAILABLE_INFORMATION &&
                k.info.pin->userMaxTries != CK_UNAVAILABLE_INFORMATION &&
                k.info.pin->userTriesLeft < k.info.pin->userMaxTries) {
                const CK_ULONG left = k.info.pin->userTriesLeft;
                out.push_back(finding(pin_tries_low, left <= 1 ? Severity::problem : Severity::warning, &k,
                                      "a wrong user PIN was entered: " + std::to_string(left) + " of " +
                                          std::to_string(k.info.pin->userMaxTries) +
                                          (left == 1 ? " try is" : " tries are") +
                                          " left before the PIN locks",
                                      "check the PIN with " + command(f, k, "ukey pin verify") +
                                          " (the right PIN restores all tries); remove any wrong PIN a browser "
                                          "or program has saved"));
            } else if (fl & (CKF_USER_PIN_FINAL_TRY | CKF_USER_PIN_COUNT_LOW)) {
                const bool final = fl & CKF_USER_PIN_FINAL_TRY;
                out.push_back(finding(pin_tries_low, final ? Severity::problem : Severity::warning, &k,
                                      final ? "a wrong user PIN was entered: one try is left before the PIN locks"
                                            : "wrong user PINs were entered: the Key says few tries are left",
                                      "check the PIN with " + command(f, k, "ukey pin verify") +
                                          " (the right PIN restores all tries)"));
            }
        }
    }};

} // namespace ukey::cli::doctor
