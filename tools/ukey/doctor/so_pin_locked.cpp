// P4: the SO PIN is locked: the user PIN can no longer be unlocked.
#include "doctor.h"

namespace ukey::cli::doctor {

extern const Check so_pin_locked;
const Check so_pin_locked{
    "P4.so-pin-locked", "P4", "the SO PIN is locked", "too many wrong SO PINs in a row",
    "nothing on this computer can unlock it: the issuer can (or the Key is replaced)",
    [](const Facts& f, std::vector<Finding>& out) {
        for (const auto& k : f.keys) {
            const bool damaged = k.info.pin && (k.info.pin->flags & UKEY_PIN_STATE_DAMAGED);
            if (!k.info.initialized() || damaged || !(k.info.token.flags & CKF_SO_PIN_LOCKED))
                continue;
            out.push_back(finding(so_pin_locked, k.info.token.flags & CKF_USER_PIN_LOCKED ? Severity::problem
                                                                                          : Severity::warning,
                                  &k,
                                  "the SO PIN is locked after too many wrong tries: a locked user PIN could no "
                                  "longer be unlocked, and the Key cannot be initialised again",
                                  "keep the user PIN safe; to unlock the SO PIN, ask the Key's issuer"));
        }
    }};

} // namespace ukey::cli::doctor
