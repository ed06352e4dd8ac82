// P4: the SO PIN is locked: the user PIN can no longer be unlocked.
#include "doctor.h"

namespace ukey::cli::doctor {

UKEY_DOCTOR_KEY_CHECK(so_pin_locked, "P4.so-pin-locked", "P4", "the SO PIN is locked",
                      "too many wrong SO PINs in a row",
                      "nothing on this computer can unlock it: the issuer can (or the Key is replaced)")
{
    if (!counts_usable(k) || !(k.info.token.flags & CKF_SO_PIN_LOCKED))
        return;
    out.push_back(finding(so_pin_locked,
                          k.info.token.flags & CKF_USER_PIN_LOCKED ? Severity::problem : Severity::warning, &k,
                          "the SO PIN is locked after too many wrong tries: a locked user PIN could no longer be "
                          "unlocked, and the Key cannot be initialised again",
                          "keep the user PIN safe; to unlock the SO PIN, ask the Key's issuer"));
}

} // namespace ukey::cli::doctor
