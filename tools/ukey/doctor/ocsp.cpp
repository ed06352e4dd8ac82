#include "ocsp.h"

#include "net.h"

#include "client/ossl.h"
#include "client/x509.h"

#include <openssl/err.h>
#include <openssl/http.h>
#include <openssl/ocsp.h>

#include <unistd.h>

namespace ukey::cli::doctor {

namespace {

using OcspRequestPtr = client::OsslPtr<OCSP_REQUEST, OCSP_REQUEST_free>;
using OcspResponsePtr = client::OsslPtr<OCSP_RESPONSE, OCSP_RESPONSE_free>;
using OcspBasicPtr = client::OsslPtr<OCSP_BASICRESP, OCSP_BASICRESP_free>;
using OcspCertIdPtr = client::OsslPtr<OCSP_CERTID, OCSP_CERTID_free>;

std::string openssl_error(const char* fallback)
{
    const unsigned long e = ERR_peek_last_error();
    char buf[256];
    if (e)
        ERR_error_string_n(e, buf, sizeof buf);
    ERR_clear_error();
    return e ? std::string(buf) : std::string(fallback);
}

// The response for `id`, when it is signed by the CA (or a responder the
// CA delegated to) and fresh.
void judge(OCSP_RESPONSE* resp, OCSP_REQUEST* req, OCSP_CERTID* id, X509* issuer, OcspAnswer& a)
{
    a.status = OcspAnswer::Status::unusable;
    if (const int st = OCSP_response_status(resp); st != OCSP_RESPONSE_STATUS_SUCCESSFUL) {
        a.error = std::string("it answers '") + OCSP_response_status_str(st) + "'";
        return;
    }
    OcspBasicPtr bs(OCSP_response_get1_basic(resp));
    if (!bs) {
        a.error = "its answer is not an OCSP response";
        return;
    }
    if (OCSP_check_nonce(req, bs.get()) == 0) {
        a.error = "its answer is for another request (the nonce differs)";
        return;
    }
    client::X509StorePtr store(X509_STORE_new());
    client::X509Stack certs(sk_X509_new_null());
    if (!store || !certs || X509_STORE_add_cert(store.get(), issuer) != 1 || sk_X509_push(certs.get(), issuer) <= 0) {
        a.error = openssl_error("out of memory");
        return;
    }
    // The CA may itself be an intermediate: it is the anchor here.
    X509_STORE_set_flags(store.get(), X509_V_FLAG_PARTIAL_CHAIN);
    if (OCSP_basic_verify(bs.get(), certs.get(), store.get(), 0) <= 0) {
        a.error = "its answer is not signed for the certificate's CA (" + openssl_error("bad signature") + ")";
        return;
    }
    int status = -1, reason = -1;
    ASN1_GENERALIZEDTIME *revoked = nullptr, *this_update = nullptr, *next_update = nullptr;
    if (OCSP_resp_find_status(bs.get(), id, &status, &reason, &revoked, &this_update, &next_update) != 1) {
        a.error = "its answer does not mention the certificate";
        return;
    }
    if (OCSP_check_validity(this_update, next_update, 300, -1) != 1) {
        a.error = "its answer is out of date";
        ERR_clear_error();
        return;
    }
    switch (status) {
    case V_OCSP_CERTSTATUS_GOOD:
        a.status = OcspAnswer::Status::good;
        break;
    case V_OCSP_CERTSTATUS_REVOKED:
        a.status = OcspAnswer::Status::revoked;
        a.revoked_at = client::asn1_time(revoked);
        a.reason = reason;
        break;
    default:
        a.status = OcspAnswer::Status::unknown;
    }
}

} // namespace

std::string ocsp_responder(X509* cert)
{
    STACK_OF(OPENSSL_STRING)* urls = X509_get1_ocsp(cert);
    std::string url;
    for (int i = 0; urls && i < sk_OPENSSL_STRING_num(urls) && url.empty(); ++i)
        if (const char* u = sk_OPENSSL_STRING_value(urls, i); u && std::string(u).rfind("http://", 0) == 0)
            url = u;
    X509_email_free(urls);
    return url;
}

std::string revocation_reason(long code)
{
    switch (code) {
    case 1:
        return "the key was compromised";
    case 3:
        return "the holder's details changed";
    case 4:
        return "it was replaced by a new certificate";
    case 5:
        return "it is no longer needed";
    case 6:
        return "it is on hold";
    default:
        return {};
    }
}

OcspAnswer ask_ocsp(const std::string& url, X509* cert, X509* issuer)
{
    OcspAnswer a;
    a.url = url;
    if (a.url.empty() || !issuer)
        return a;
    a.status = OcspAnswer::Status::unreachable;
    const SigpipeBlocked no_sigpipe;
    ERR_clear_error();
    OcspRequestPtr req(OCSP_REQUEST_new());
    OcspCertIdPtr id(OCSP_cert_to_id(nullptr, cert, issuer));
    OcspCertIdPtr id_in_request(id ? OCSP_CERTID_dup(id.get()) : nullptr);
    if (!req || !id_in_request || !OCSP_request_add0_id(req.get(), id_in_request.get())) {
        a.error = openssl_error("the request cannot be made");
        return a;
    }
    id_in_request.release(); // the request owns it now
    OCSP_request_add1_nonce(req.get(), nullptr, -1);
    char *host = nullptr, *port = nullptr, *path = nullptr;
    if (OSSL_HTTP_parse_url(a.url.c_str(), nullptr, nullptr, &host, &port, nullptr, &path, nullptr, nullptr) != 1) {
        a.error = openssl_error("not a URL");
        return a;
    }
    client::OsslMem<char> h(host), p(port), pa(path);
    // The request goes over this connection, not a second one: a plain
    // connect first (as for CRLs) tells "refused" from "no answer", and a
    // responder serving one connection at a time would wait on a probe.
    const int fd = connect_within(h.get(), p.get(), 5000, a.error);
    if (fd < 0)
        return a;
    client::BioPtr sock(BIO_new_socket(fd, BIO_CLOSE));
    if (!sock) {
        close(fd);
        a.error = openssl_error("out of memory");
        return a;
    }
    client::BioPtr body(ASN1_item_i2d_mem_bio(ASN1_ITEM_rptr(OCSP_REQUEST), reinterpret_cast<ASN1_VALUE*>(req.get())));
    client::BioPtr answer(body ? OSSL_HTTP_transfer(nullptr, h.get(), p.get(), pa.get(), 0, nullptr, nullptr,
                                                    sock.get(), sock.get(), nullptr, nullptr, 0, nullptr,
                                                    "application/ocsp-request", body.get(),
                                                    "application/ocsp-response", 1, 64 * 1024, 5, 0)
                                       : nullptr);
    if (!answer) {
        a.error = openssl_error("no answer");
        return a;
    }
    OcspResponsePtr resp(d2i_OCSP_RESPONSE_bio(answer.get(), nullptr));
    if (!resp) {
        a.status = OcspAnswer::Status::unusable;
        a.error = "its answer is not an OCSP response";
        ERR_clear_error();
        return a;
    }
    judge(resp.get(), req.get(), id.get(), issuer, a);
    ERR_clear_error();
    return a;
}

} // namespace ukey::cli::doctor
