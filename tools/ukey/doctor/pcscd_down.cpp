// P1: the smart-card service is not running, the error users meet as
// 8010001D. Only a problem when a backend reads cards through it.
#include "doctor.h"

#include <PCSC/winscard.h>

#include <cstdio>

#include <unistd.h>

namespace ukey::cli::doctor {

UKEY_DOCTOR_CHECK(pcscd_down, "P1.pcscd-down", "P1", "the smart-card service (pcscd) is not running or not reachable",
                  "pcscd is not installed, was stopped, or its socket is not enabled; applications then report "
                  "8010001D",
                  "as root: `apt install pcscd` if it is missing, then `systemctl enable --now pcscd.socket`")
{
    if (!f.pcsc.needed || f.pcsc.establish == SCARD_S_SUCCESS)
        return;
    const bool no_service = f.pcsc.establish == static_cast<long>(SCARD_E_NO_SERVICE);
    char code[16];
    std::snprintf(code, sizeof code, "%08lX", static_cast<unsigned long>(f.pcsc.establish) & 0xffffffffUL);
    Finding& fd = out.emplace_back(finding(pcscd_down, Severity::problem, nullptr,
                          std::string(no_service ? "the smart-card service pcscd is not running"
                                                 : "the smart-card service pcscd does not answer") +
                              " (error " + code + (no_service ? ", SCARD_E_NO_SERVICE" : "") +
                              "), so no Key in a card reader can be seen",
                          "start it as root with `systemctl enable --now pcscd.socket` (install it first with `apt "
                          "install pcscd` if that says it does not exist)"));
    for (const char* systemctl : {"/usr/bin/systemctl", "/bin/systemctl"})
        if (access(systemctl, X_OK) == 0 && access("/run/systemd/system", F_OK) == 0) {
            fd.remedy = {systemctl, "start", "pcscd.socket"};
            break;
        }
}

} // namespace ukey::cli::doctor
