// Fuzz target: a SCEP CA's GetCACert answer (ScepClient::get_ca in
// client/scep.cpp, then scep_trust() in scep_trust.cpp): a DER
// certificate or a degenerate PKCS#7 bundle from the network, checked
// against a fixed pinned CA fingerprint (scep_fixtures.h) and its RAs
// verified. Served over real HTTP on 127.0.0.1 (scep_http.h).
#include "client/scep.h"
#include "scep_fixtures.h"
#include "scep_http.h"

#include <openssl/err.h>

#include <chrono>
#include <cstdint>

using namespace ukey;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    client::ScepClient c = fuzz::client_answered_with(data, size);
    auto ok = c.get_ca(fuzz::ca_fingerprint);
    if (ok) {
        // What the renewal flow reads next: who requests go to, and names.
        client::name_text(X509_get_subject_name(c.recipient()));
        client::cert_details(c.ca());
    } else {
        (void)ok.error().message.size();
    }
    ERR_clear_error();
    return 0;
}
