// P11: a Key that a driver registered with p11-kit (not one of ukey's
// backends: OpenSC's module, a vendor's) also shows: every program using
// p11-kit-proxy sees it a second time, past ukey's PIN lockout.
#include "doctor.h"

#include "token/escape.h"

namespace ukey::cli::doctor {

namespace {

// As ukey shows a token's text (trailing blanks cut).
std::string trimmed(std::string s)
{
    s.erase(s.find_last_not_of(' ') + 1);
    return s;
}

} // namespace

UKEY_DOCTOR_KEY_CHECK(key_through_other_module, "P11.key-through-other-module", "P11",
                      "a Key is also shown by another driver registered with p11-kit",
                      "a generic driver (OpenSC) or the vendor's reads the same card and its package registered it "
                      "with p11-kit, so programs using p11-kit-proxy see the Key twice, once without ukey's PIN "
                      "lockout",
                      "disable that module for p11-kit-proxy (`disable-in: p11-kit-proxy`, in "
                      "/etc/pkcs11/modules/NAME.module) or remove its .module file")
{
    const std::string serial = trimmed(k.info.serial());
    if (serial.empty())
        return;
    for (const auto& m : f.p11kit_modules)
        for (const auto& t : m.tokens) {
            if (trimmed(t.serial) != serial || trimmed(t.manufacturer) != trimmed(k.info.manufacturer()))
                continue;
            const std::string name = escape::printable(m.name);
            const std::string where = m.file.empty() ? "its .module file" : escape::printable(m.file);
            out.push_back(finding(
                key_through_other_module, Severity::warning, &k,
                "p11-kit's module '" + name + "' (" + escape::printable(m.library) +
                    ") shows this Key too, so every program using p11-kit-proxy (Firefox or Chromium set up for it) "
                    "sees it a second time, straight from that driver and without ukey's PIN lockout",
                m.file.rfind("/usr/share/", 0) == 0
                    ? "as root, write the line `disable-in: p11-kit-proxy` to /etc/pkcs11/modules/" + name +
                          ".module (it overrides " + where + " and outlasts package updates)"
                    : "add the line `disable-in: p11-kit-proxy` to " + where + ", or remove that file"));
            break;
        }
}

} // namespace ukey::cli::doctor
