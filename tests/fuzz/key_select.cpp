// Fuzz target: Key selection (tools/ukey/select.cpp, select_key): an RFC 7512
// PKCS#11 URI parsed by p11-kit with P11_KIT_URI_FOR_ANY, its refusals (a PIN
// in the URI, unknown attributes), and matching a URI, a label, a serial or a
// slot number against the Keys present. select_key itself needs a loaded
// module, so its parsing runs here in the same order, and the matching is
// the real one (client::key_matches).
//
// The input is "<spec>\n<label>\n<serial>": the spec a user gives, and the
// label and serial of one of the Keys present (padded into CK_TOKEN_INFO as
// a token reports them, read back through client::KeyInfo).
#include "client/module.h"

#include <p11-kit/uri.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

using ukey::client::KeyInfo;

namespace {

void pad(CK_UTF8CHAR* field, std::size_t n, const std::string& s)
{
    std::memset(field, ' ', n);
    std::memcpy(field, s.data(), std::min(n, s.size()));
}

KeyInfo key(CK_SLOT_ID slot, const std::string& label, const std::string& serial, bool initialized)
{
    KeyInfo k;
    k.slot = slot;
    pad(k.token.label, sizeof k.token.label, label);
    pad(k.token.serialNumber, sizeof k.token.serialNumber, serial);
    pad(k.token.manufacturerID, sizeof k.token.manufacturerID, "SoftHSM project");
    pad(k.token.model, sizeof k.token.model, "SoftHSM v2");
    k.token.flags = initialized ? CKF_TOKEN_INITIALIZED : 0;
    return k;
}


} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    std::string in(reinterpret_cast<const char*>(data), size);
    auto nl1 = in.find('\n');
    std::string spec = in.substr(0, nl1), label, serial;
    if (nl1 != std::string::npos) {
        auto nl2 = in.find('\n', nl1 + 1);
        label = in.substr(nl1 + 1, nl2 == std::string::npos ? std::string::npos : nl2 - nl1 - 1);
        if (nl2 != std::string::npos)
            serial = in.substr(nl2 + 1);
    }
    const std::vector<KeyInfo> keys{key(17, label, serial, true), key(0x1234, "Alice", "0123456789abcdef", true),
                                    key(3, "", "", false)};
    std::unique_ptr<P11KitUri, void (*)(P11KitUri*)> uri(nullptr, p11_kit_uri_free);
    if (spec.rfind("pkcs11:", 0) == 0) {
        uri.reset(p11_kit_uri_new());
        if (p11_kit_uri_parse(spec.c_str(), P11_KIT_URI_FOR_ANY, uri.get()) != P11_KIT_URI_OK)
            return 0;
        if (p11_kit_uri_get_pin_value(uri.get()) || p11_kit_uri_get_pin_source(uri.get()))
            return 0;
        if (p11_kit_uri_any_unrecognized(uri.get()))
            return 0;
    }
    std::size_t found = 0;
    for (const auto& k : keys)
        found += ukey::client::key_matches(k, spec, uri.get());
    (void)found;
    return 0;
}
