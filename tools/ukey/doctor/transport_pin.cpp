// P5: the PIN the Key was shipped with is still set.
#include "doctor.h"

namespace ukey::cli::doctor {

UKEY_DOCTOR_KEY_CHECK(transport_pin, "P5.transport-pin", "P5", "the Key still has its transport (default) PIN",
                      "issuers ship Keys with a well-known PIN (such as 1111) that must be changed before use",
                      "`ukey pin change` sets your own PIN; until then applications cannot log in")
{
    const bool must = (k.info.pin && (k.info.pin->flags & UKEY_PIN_USER_MUST_CHANGE)) ||
                      (k.info.token.flags & CKF_USER_PIN_TO_BE_CHANGED);
    if (!counts_usable(k) || !must || (k.info.token.flags & CKF_USER_PIN_LOCKED))
        return;
    out.push_back(finding(transport_pin, Severity::warning, &k,
                          "the Key still has the transport PIN it was shipped with: applications cannot log in "
                          "until you set your own",
                          "set your own PIN with " + command(f, k, "ukey pin change")));
}

} // namespace ukey::cli::doctor
