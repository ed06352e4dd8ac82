// Fuzz target: a SCEP CA's GetCACaps answer (client/scep.cpp,
// ScepClient::get_caps), served over real HTTP on 127.0.0.1 (scep_http.h):
// free text from the network, read line by line.
#include "client/scep.h"
#include "scep_http.h"

#include <openssl/err.h>

#include <chrono>
#include <cstdint>

using namespace ukey;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    client::ScepClient c = fuzz::client_answered_with(data, size);
    auto caps = c.get_caps();
    if (caps)
        for (const auto& line : caps->raw)
            (void)line.size();
    ERR_clear_error();
    return 0;
}
