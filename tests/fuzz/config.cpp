// Fuzz target: the config parser as the tools run it, parse_tool_config(text,
// source) (token/config.cpp, tools/common/tool_config.cpp),
// and what the daemon then asks of a parsed config (renewal_ca_for's globs).
// Everything in a config file is hostile input: errors, never a crash.
#include "tool_config.h"

#include <cstdint>
#include <string>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    std::string_view text(reinterpret_cast<const char*>(data), size);
    auto cfg = ukey::parse_tool_config(text, "/fuzz/ukey.conf");
    if (cfg) {
        // The [[renewal.ca]] keys/issuer globs meet Key labels and issuers.
        ukey::renewal_ca_for(*cfg, "Alice's Key", "0123456789abcdef", "CN=Example CA,O=Example");
        for (const auto& ca : cfg->renewal.cas)
            for (const auto& g : ca.keys)
                ukey::glob_match(g, std::string(text.substr(0, 64)));
    } else {
        (void)cfg.error().message.size();
    }
    return 0;
}
