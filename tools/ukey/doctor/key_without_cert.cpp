// P13: a private key with no certificate on the Key: a request (CSR) whose
// certificate was never written, or abandoned. Browsers list certificates,
// not keys, so such a key logs in nowhere. Private keys are seen only after
// login: with --pin-fd / --pin-file.
#include "doctor.h"

#include "token/escape.h"

#include <algorithm>

namespace ukey::cli::doctor {

namespace {

// Whether `key` (a private key) has a certificate on the Key: one whose
// public key is its own, or, for keys whose public half the Key does not
// show, one with the same id (as `ukey key list` pairs them).
bool has_certificate(const KeyFacts& k, const client::KeyOnKey& key)
{
    for (const auto& c : k.certs) {
        if (!key.id.empty() && c.id == key.id)
            return true;
        auto x = c.parse();
        if (x && client::key_matching(k.keys, X509_get0_pubkey(x.get())) == &key)
            return true;
    }
    return false;
}

} // namespace

UKEY_DOCTOR_KEY_CHECK(key_without_cert, "P13.key-without-cert", "P13",
                      "a private key on the Key with no certificate (with a PIN given)",
                      "a certificate request (CSR) was made for it and its certificate never written to the Key, "
                      "or the request was abandoned",
                      "write its certificate to the Key (`ukey cert write`); if the request was abandoned, delete "
                      "the key (`ukey key delete`)")
{
    if (!k.logged_in)
        return;
    for (const auto& key : k.keys) {
        if (!key.is_private() || has_certificate(k, key))
            continue;
        // The new key of a renewal under way gets its certificate at the
        // step cert_written (P8 reports the renewal if it stopped).
        if (k.journal && !k.journal->new_id.empty() && k.journal->new_id == key.id)
            continue;
        const std::string id = client::to_hex(key.id);
        std::string name = "the private key ";
        if (!key.label.empty())
            name.append("'").append(escape::printable(key.label)).append("' ");
        name.append("(id ").append(id.empty() ? std::string("none") : id).append(")");
        out.push_back(finding(key_without_cert, Severity::warning, &k,
                              name + " has no certificate on this Key, so it cannot be used to log in until its "
                                     "certificate is written",
                              "when the CA sends its certificate, write it: " +
                                  command(f, k, "ukey cert write --file CERT.pem") +
                                  (id.empty() ? std::string("; if its request was abandoned, delete the key with "
                                                            "pkcs11-tool (it has no id)")
                                              : "; if its request was abandoned, delete the key: " +
                                                    command(f, k, "ukey key delete --id " + id))));
    }
}

} // namespace ukey::cli::doctor
