// P9: the chain of a certificate cannot be completed: an intermediate or
// root CA certificate is neither on the Key nor in the system's store.
#include "chain.h"

#include "token/escape.h"

namespace ukey::cli::doctor {

UKEY_DOCTOR_CERT_CHECK(chain_incomplete, "P9.chain-incomplete", "P9", "a certificate's chain cannot be completed",
                       "the CA certificates it was issued under are neither on the Key nor installed on this computer",
                       "get the named CA certificate from the CA (the URL is shown when the certificate names one) "
                       "and write it to the Key with `ukey cert write`")
{
    const Chain ch = build_chain(k, c.x.get());
    if (ch.complete || ch.missing.empty())
        return;
    const std::string from = ch.aia.empty() ? std::string("ask the CA for it")
                                            : "the certificate says it is at " + escape::printable(ch.aia.front());
    out.push_back(finding(chain_incomplete, Severity::warning, &k,
                          "the certificate '" + c.label + "' was issued by '" + escape::printable(ch.missing) +
                              "', whose certificate is neither on the Key nor installed here, so websites may not "
                              "accept it",
                          from + "; then write it to the Key: " + command(f, k, "ukey cert write --file CA.pem")));
}

} // namespace ukey::cli::doctor
