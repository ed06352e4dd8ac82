// P12: a browser of this user that does not load ukey's module, so it
// never offers the Key's certificates to websites.
#include "doctor.h"

#include "token/escape.h"

#include <unistd.h>

namespace ukey::cli::doctor {

UKEY_DOCTOR_CHECK(browser_module_missing, "P12.browser-module-missing", "P12",
                  "a browser of this user does not load ukey's module",
                  "the module was never added to that browser's NSS database (Chromium: ~/.pki/nssdb; Firefox: "
                  "each profile)",
                  "add it with modutil (the browser closed), or in Firefox: Settings, Security Devices, Load")
{
    for (const auto& db : f.browsers) {
        if (loads_ukey(f, db))
            continue;
        const std::string dir = escape::printable(db.dir);
        Finding& fd = out.emplace_back(finding(
            browser_module_missing, Severity::warning, nullptr,
            db.browser + " does not load ukey's module, so websites there never see the Key's certificates",
            "close the browser, then `modutil -dbdir sql:" + dir + " -add ukey -libfile " +
                escape::printable(f.module_path) + "`"));
        if (access("/usr/bin/modutil", X_OK) == 0)
            fd.remedy = {"/usr/bin/modutil", "-force", "-dbdir", "sql:" + db.dir, "-add", "ukey",
                         "-libfile", f.module_path};
    }
}

} // namespace ukey::cli::doctor
