// P13: a certificate whose private key is not on the Key (deleted, or the
// certificate was written to the wrong Key). Private keys are seen only
// after login: with --pin-fd / --pin-file.
#include "doctor.h"

namespace ukey::cli::doctor {

UKEY_DOCTOR_CERT_CHECK(cert_without_key, "P13.cert-without-key", "P13",
                       "a certificate whose private key is not on the Key (with a PIN given)",
                       "the key was deleted, or the certificate was written to another Key than its key",
                       "delete the certificate if it is no longer used (`ukey cert delete`); else find the Key that "
                       "holds its key")
{
    if (!k.logged_in)
        return;
    const client::KeyOnKey* key = client::key_matching(k.keys, X509_get0_pubkey(c.x.get()));
    if (key && key->is_private())
        return;
    out.push_back(finding(cert_without_key, Severity::problem, &k,
                          "the certificate '" + c.label +
                              "' has no private key on this Key, so it cannot be used to log in or sign",
                          "if it is no longer used, delete it: " +
                              command(f, k, "ukey cert delete --id " + client::to_hex(c.on_key->id)) +
                              "; else it belongs with the Key that holds its key"));
}

} // namespace ukey::cli::doctor
