// P4: the user PIN is locked (six wrong tries by default).
#include "doctor.h"

namespace ukey::cli::doctor {

UKEY_DOCTOR_KEY_CHECK(user_pin_locked, "P4.user-pin-locked", "P4", "the user PIN is locked",
                      "too many wrong PINs in a row (6 by default)",
                      "`ukey pin unlock` with the SO PIN sets a new user PIN; without the SO PIN only the issuer "
                      "can help")
{
    if (!counts_usable(k) || !(k.info.token.flags & CKF_USER_PIN_LOCKED))
        return;
    out.push_back(finding(user_pin_locked, Severity::problem, &k,
                          "the user PIN is locked after too many wrong tries: no application can log in with this "
                          "Key",
                          k.info.token.flags & CKF_SO_PIN_LOCKED
                              ? std::string("the SO PIN is locked too, so only the Key's issuer can help: ask them "
                                            "for a new Key or a remote unlock")
                              : "unlock it with the SO PIN: " + command(f, k, "ukey pin unlock") +
                                    " sets a new user PIN; if you do not know the SO PIN, ask the Key's issuer"));
}

} // namespace ukey::cli::doctor
