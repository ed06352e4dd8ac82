// SCEP over OpenSSL's HTTP client (see scep.h).
#include "client/scep.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/http.h>

#include <cctype>
#include <ctime>

namespace ukey::client {

namespace {

Error scep_error(const std::string& what)
{
    return Error{CKR_OK, what};
}

// Everything `b` gives until its end: a streamed (non-ASN.1) answer comes
// from the non-blocking socket, so a read may have to wait, until `until`.
std::optional<Bytes> read_all(BIO* b, std::time_t until, std::size_t max)
{
    Bytes out;
    unsigned char buf[4096];
    for (;;) {
        int n = BIO_read(b, buf, sizeof buf);
        if (n > 0) {
            out.insert(out.end(), buf, buf + n);
            if (out.size() > max)
                return std::nullopt;
            continue;
        }
        // A memory BIO (an ASN.1 answer read whole) says "retry" at its end.
        if (!BIO_should_retry(b) || BIO_eof(b))
            return out;
        if (BIO_wait(b, until, 100) <= 0)
            return std::nullopt;
    }
}
std::string url_encode(const std::string& s)
{
    static const char* hex = "0123456789ABCDEF";
    std::string out;
    for (unsigned char c : s) {
        if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
            out += char(c);
        } else {
            out += '%';
            out += hex[c >> 4];
            out += hex[c & 15];
        }
    }
    return out;
}
} // namespace

ScepClient::ScepClient(std::string url, std::chrono::seconds timeout) : url_(std::move(url)), timeout_(timeout)
{
    char *host = nullptr, *port = nullptr, *path = nullptr, *query = nullptr, *frag = nullptr;
    int ssl = 0;
    const bool parsed =
        OSSL_HTTP_parse_url(url_.c_str(), &ssl, nullptr, &host, &port, nullptr, &path, &query, &frag) == 1;
    OsslMem<char> h(host), po(port), pa(path), q(query), f(frag);
    if (parsed && !ssl && h && po && pa) {
        host_ = h.get();
        port_ = po.get();
        path_ = pa.get();
        url_ok_ = true;
    }
    ERR_clear_error();
}

Result<Bytes> ScepClient::http(const std::string& query, const Bytes* post, const char* content_type)
{
    if (!url_ok_)
        return scep_error("the CA URL '" + url_ + "' is not an http:// URL (https is not supported: SCEP protects "
                          "its messages itself)");
    const std::string path = path_ + "?" + query;
    BioPtr req;
    if (post) {
        req.reset(BIO_new_mem_buf(post->data(), static_cast<int>(post->size())));
        if (!req)
            return scep_error("out of memory");
    }
    ERR_clear_error();
    const std::time_t until = std::time(nullptr) + timeout_.count();
    // Every answer but GetCACaps's is DER, read whole by OpenSSL.
    const int asn1 = query.rfind("operation=GetCACaps", 0) == 0 ? 0 : 1;
    BioPtr resp(OSSL_HTTP_transfer(nullptr, host_.c_str(), port_.c_str(), path.c_str(), 0, nullptr, nullptr, nullptr,
                                   nullptr, nullptr, nullptr, 0, nullptr, post ? content_type : nullptr, req.get(),
                                   nullptr, asn1, 1024 * 1024, static_cast<int>(timeout_.count()), 0));
    if (!resp) {
        std::string why = openssl_errors();
        if (why.find("timeout") != std::string::npos || why.find("timed out") != std::string::npos)
            return scep_error("the CA at " + url_ + " did not answer within " + std::to_string(timeout_.count()) +
                              " s: check that it is up, or raise the timeout");
        if (why.find("asn1") != std::string::npos || why.find("ASN1") != std::string::npos)
            return scep_error("the CA's answer is not a SCEP message (not DER: " + why +
                              "): it was ignored and nothing was written to the Key");
        return scep_error("cannot talk to the CA at " + url_ + " (" + (why.empty() ? "no answer" : why) +
                          "): check the URL and that the CA is up");
    }
    auto out = read_all(resp.get(), until, 1024 * 1024);
    if (!out)
        return scep_error("the CA at " + url_ + " did not finish its answer within " +
                          std::to_string(timeout_.count()) + " s (or sent more than 1 MiB)");
    return *out;
}

Result<ScepCaps> ScepClient::get_caps()
{
    auto body = http("operation=GetCACaps", nullptr, nullptr);
    if (!body)
        return body.error();
    return parse_caps(std::string_view(reinterpret_cast<const char*>(body->data()), body->size()));
}

Result<void> ScepClient::get_ca(const std::string& fingerprint)
{
    auto body = http("operation=GetCACert", nullptr, nullptr);
    if (!body)
        return body.error();
    auto certs = parse_ca_certs(*body, url_);
    if (!certs)
        return certs.error();
    trust_ = {};
    auto trust = scep_trust(*certs, fingerprint, url_);
    if (!trust)
        return trust.error();
    trust_ = std::move(*trust);
    if (EVP_PKEY_get_base_id(X509_get0_pubkey(recipient())) != EVP_PKEY_RSA)
        return scep_error("the CA's SCEP certificate has no RSA key, so ukey cannot encrypt a request to it");
    return {};
}
Result<ScepReply> ScepClient::pki_operation(ScepMessage type, const Bytes& payload, const std::string& txid,
                                            X509* signer_cert, EVP_PKEY* signer_key, const ScepCaps& caps)
{
    if (!recipient())
        return scep_error("internal: GetCACert first");
    auto msg = encode_pki_message(type, payload, txid, recipient(), signer_cert, signer_key, caps);
    if (!msg)
        return msg.error();
    Result<Bytes> body = caps.post ? http("operation=PKIOperation", &msg->der, "application/x-pki-message")
                                   : http("operation=PKIOperation&message=" + url_encode(to_base64(msg->der)), nullptr,
                                          nullptr);
    if (!body)
        return body.error();
    return decode_cert_rep(*body, trust_.signers, txid, msg->nonce, signer_cert, signer_key);
}

} // namespace ukey::client
