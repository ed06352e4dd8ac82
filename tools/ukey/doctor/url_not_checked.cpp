// P13 with --url: the site could not be asked which certificates it wants
// (unreachable, not TLS), or it did not ask for one when connecting.
#include "doctor.h"

#include "token/escape.h"

namespace ukey::cli::doctor {

UKEY_DOCTOR_CHECK(url_not_checked, "P13.url-not-checked", "P13",
                  "with --url: the site cannot be asked which certificates it accepts, or asks for none",
                  "the site is down or out of reach (a proxy?), or it asks for a certificate only on some pages",
                  "check the address and the network; a site that asks later is not checked")
{
    if (!f.server)
        return;
    const std::string url = escape::printable(f.server->url);
    if (!f.server->error.empty())
        out.push_back(finding(url_not_checked, Severity::warning, nullptr,
                              "the site " + url + " could not be asked which certificates it accepts (" +
                                  escape::printable(f.server->error) + ")",
                              "check the address and the network (a proxy?), then run `ukey doctor --url` again"));
    else if (!f.server->asks_for_cert)
        out.push_back(finding(url_not_checked, Severity::note, nullptr,
                              "the site " + url + " did not ask for a certificate when connecting, so which "
                                                  "certificates it accepts is not known",
                              "if it asks only on some pages, run `ukey doctor --url` with the address of such a "
                              "page"));
}

} // namespace ukey::cli::doctor
