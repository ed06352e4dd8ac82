#include "chain.h"

#include "client/names.h"

#include <openssl/err.h>
#include <openssl/x509v3.h>

namespace ukey::cli::doctor {

namespace {

std::vector<std::string> ca_issuers(X509* x)
{
    std::vector<std::string> out;
    client::OsslPtr<AUTHORITY_INFO_ACCESS, AUTHORITY_INFO_ACCESS_free> aia(
        static_cast<AUTHORITY_INFO_ACCESS*>(X509_get_ext_d2i(x, NID_info_access, nullptr, nullptr)));
    for (int i = 0; aia && i < sk_ACCESS_DESCRIPTION_num(aia.get()) && out.size() < 4; ++i) {
        const ACCESS_DESCRIPTION* ad = sk_ACCESS_DESCRIPTION_value(aia.get(), i);
        if (OBJ_obj2nid(ad->method) != NID_ad_ca_issuers || ad->location->type != GEN_URI)
            continue;
        const ASN1_IA5STRING* uri = ad->location->d.uniformResourceIdentifier;
        out.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(uri)),
                         static_cast<std::size_t>(ASN1_STRING_length(uri)));
    }
    return out;
}

} // namespace

Chain build_chain(const KeyFacts& k, X509* cert)
{
    Chain c;
    // `untrusted` does not own its elements: `held` does, and outlives the
    // verification context that points at them.
    std::vector<client::X509Ptr> held;
    client::X509StorePtr store(X509_STORE_new());
    client::X509Stack untrusted(sk_X509_new_null());
    client::X509StoreCtxPtr ctx(X509_STORE_CTX_new());
    if (!store || !untrusted || !ctx)
        return c;
    X509_STORE_set_default_paths(store.get());
    // The Key's own roots count as anchors: what matters here is whether a
    // whole chain can be put together, not whether this computer trusts it.
    for (const auto& on_key : k.certs) {
        auto x = on_key.parse();
        if (!x || X509_check_ca(x.get()) == 0)
            continue;
        if (X509_check_issued(x.get(), x.get()) == X509_V_OK)
            X509_STORE_add_cert(store.get(), x.get());
        else if (sk_X509_push(untrusted.get(), x.get()) > 0)
            held.push_back(std::move(x));
    }
    if (X509_STORE_CTX_init(ctx.get(), store.get(), cert, untrusted.get()) != 1)
        return c;
    X509_STORE_CTX_set_flags(ctx.get(), X509_V_FLAG_NO_CHECK_TIME);
    X509_VERIFY_PARAM_set_purpose(X509_STORE_CTX_get0_param(ctx.get()), X509_PURPOSE_ANY);
    c.complete = X509_verify_cert(ctx.get()) == 1;
    c.error = X509_STORE_CTX_get_error(ctx.get());
    STACK_OF(X509)* chain = X509_STORE_CTX_get0_chain(ctx.get());
    const int n = chain ? sk_X509_num(chain) : 0;
    if (n >= 2)
        c.issuer = client::x509_ref(sk_X509_value(chain, 1));
    if (!c.complete && n >= 1 &&
        (c.error == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY || c.error == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT)) {
        X509* last = sk_X509_value(chain, n - 1);
        c.missing = client::name_text(X509_get_issuer_name(last));
        c.aia = ca_issuers(last);
        c.last = client::x509_ref(last);
    }
    ERR_clear_error();
    return c;
}

} // namespace ukey::cli::doctor
