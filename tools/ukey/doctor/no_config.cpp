// Nothing set up: no ukey.conf. Gives the first three steps.
#include "doctor.h"

#include "token/escape.h"

namespace ukey::cli::doctor {

UKEY_DOCTOR_CHECK(no_config, "setup.no-config", "P1", "ukey has no configuration file",
                  "ukey is installed but no Key driver (backend) was named in ukey.conf yet",
                  "install the Key's driver, name it as a [[backend]] in ukey.conf, plug in the Key")
{
    if (!f.config_missing)
        return;
    const std::string path = escape::printable(f.config_path);
    out.push_back(finding(no_config, Severity::problem, nullptr,
                          "ukey is not set up yet: there is no " + path + ", so it knows no Key driver",
                          "first steps: 1. install your Key's driver (for most smart cards `apt install opensc "
                          "pcscd`, else the PKCS#11 module from your Key's issuer); 2. name it in " +
                              path + " as a [[backend]] with its module path (ukey.conf(5) has an example); 3. "
                                     "plug in the Key and run `ukey doctor` again"));
}

} // namespace ukey::cli::doctor
