// P13: several certificates that can log in to websites: the browser asks
// which one, or picks one by itself, and users pick the wrong one.
#include "doctor.h"

#include "client/cert_details.h"

#include <algorithm>

namespace ukey::cli::doctor {

UKEY_DOCTOR_KEY_CHECK(several_client_certs, "P13.several-client-certs", "P13",
                      "several valid certificates on the Key can log in to websites (with a PIN given)",
                      "a renewed certificate was written next to the old one, or the Key holds certificates for "
                      "several purposes",
                      "delete the ones no longer used, or pick the right one when the browser asks")
{
    if (!k.logged_in)
        return;
    std::vector<std::string> labels;
    for (const auto& c : user_certs(k)) {
        const auto details = client::cert_details(c.x.get());
        const auto& eku = details.ext_key_usage;
        const bool client_auth = eku.empty() || std::find(eku.begin(), eku.end(), "clientAuth") != eku.end();
        const client::KeyOnKey* key = client::key_matching(k.keys, X509_get0_pubkey(c.x.get()));
        const bool valid = details.not_before && details.not_after && *details.not_before <= f.now &&
                           f.now < *details.not_after;
        if (client_auth && valid && key && key->is_private())
            labels.push_back("'" + c.label + "'");
    }
    if (labels.size() < 2)
        return;
    std::string list;
    for (const auto& l : labels)
        list += (list.empty() ? "" : ", ") + l;
    out.push_back(finding(several_client_certs, Severity::warning, &k,
                          std::to_string(labels.size()) + " valid certificates on this Key can log in to websites (" +
                              list + "): the browser asks which one, or picks one by itself",
                          "delete those no longer used (" + command(f, k, "ukey cert delete --id ID") +
                              "), or choose by name when the browser asks"));
}

} // namespace ukey::cli::doctor
