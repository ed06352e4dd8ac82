// P9: the chain of a certificate cannot be completed: an intermediate or
// root CA certificate is neither on the Key nor in the system's store.
// With --fix, the missing certificate is fetched from the address the
// certificate names (caIssuers) and, if it is the CA that signed it,
// written to the Key.
#include "chain.h"
#include "net.h"

#include "client/state_file.h"
#include "client/x509.h"
#include "token/escape.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

namespace ukey::cli::doctor {

namespace {

constexpr std::size_t max_ca_cert = 1u << 20;

// The certificate at `url` (DER or PEM) if it is the CA that issued `child`:
// its subject is child's issuer and its key verifies child's signature.
// Anything else is refused with why: the address comes from the
// certificate, and the answer from whoever serves it.
client::X509Ptr fetch_issuer(const std::string& url, X509* child, std::string& why)
{
    client::X509Ptr x{nullptr, X509_free};
    if (url.rfind("http://", 0) != 0) {
        why = "only http:// addresses are fetched";
        return x;
    }
    std::string body;
    if (!http_get(url, max_ca_cert, body, why))
        return x;
    const auto* p = reinterpret_cast<const unsigned char*>(body.data());
    x.reset(d2i_X509(nullptr, &p, static_cast<long>(body.size())));
    if (!x) {
        client::BioPtr mem(BIO_new_mem_buf(body.data(), static_cast<int>(body.size())));
        x.reset(mem ? PEM_read_bio_X509(mem.get(), nullptr, nullptr, nullptr) : nullptr);
    }
    EVP_PKEY* key = x ? X509_get0_pubkey(x.get()) : nullptr;
    if (!x)
        why = "the answer is not a certificate";
    else if (X509_NAME_cmp(X509_get_subject_name(x.get()), X509_get_issuer_name(child)) != 0 ||
             X509_check_ca(x.get()) == 0 || !key || X509_verify(child, key) != 1)
        why = "the certificate there is not the CA certificate that signed it";
    ERR_clear_error();
    if (!why.empty())
        x.reset();
    return x;
}

// Where --fix keeps the fetched certificate for `ukey cert write`:
// <state_dir>/doctor/ca-<SHA-256 prefix>.pem (0600 in 0700).
std::string keep_for_fix(const Facts& f, X509* ca, std::string& why)
{
    client::BioPtr mem(BIO_new(BIO_s_mem()));
    if (!mem || PEM_write_bio_X509(mem.get(), ca) != 1) {
        why = "cannot encode it";
        return {};
    }
    char* data = nullptr;
    const long n = BIO_get_mem_data(mem.get(), &data);
    const std::string pem(data, static_cast<std::size_t>(n));
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    X509_digest(ca, EVP_sha256(), md, &len);
    const auto path = f.config->state_dir / "doctor" / ("ca-" + client::to_hex({md, std::min(len, 8u)}) + ".pem");
    if (auto e = client::write_private_file(path, pem); !e) {
        why = e.error().message;
        return {};
    }
    return path.string();
}

} // namespace

UKEY_DOCTOR_CERT_CHECK(chain_incomplete, "P9.chain-incomplete", "P9", "a certificate's chain cannot be completed",
                       "the CA certificates it was issued under are neither on the Key nor installed on this computer",
                       "get the named CA certificate from the CA (the URL is shown when the certificate names one) "
                       "and write it to the Key with `ukey cert write`")
{
    const Chain ch = build_chain(k, c.x.get());
    if (ch.complete || ch.missing.empty())
        return;
    std::string from = ch.aia.empty() ? std::string("ask the CA for it")
                                      : "the certificate says it is at " + escape::printable(ch.aia.front());
    std::vector<std::string> remedy;
    if (f.fixing && !f.offline && f.config && ch.last && !ch.aia.empty()) {
        std::string why;
        client::X509Ptr ca = fetch_issuer(ch.aia.front(), ch.last.get(), why);
        const std::string file = ca ? keep_for_fix(f, ca.get(), why) : std::string();
        if (!file.empty()) {
            remedy = {"ukey", "cert", "write"};
            if (const std::string key = key_arg(f, k); !key.empty())
                remedy.push_back(key);
            // --force: a CA certificate has no key of its own on the Key.
            remedy.insert(remedy.end(), {"--file", file, "--force"});
        } else {
            from += " but it could not be fetched (" + escape::printable(why) + ")";
        }
    }
    Finding& fd = out.emplace_back(
        finding(chain_incomplete, Severity::warning, &k,
                "the certificate '" + c.label + "' was issued by '" + escape::printable(ch.missing) +
                    "', whose certificate is neither on the Key nor installed here, so websites may not accept it",
                from + "; then write it to the Key: " + command(f, k, "ukey cert write --file CA.pem --force")));
    fd.remedy = std::move(remedy);
    fd.remedy_needs_pin = !fd.remedy.empty();
}

} // namespace ukey::cli::doctor
