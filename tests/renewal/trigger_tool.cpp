// ukey-renewal-trigger: drives tools/ukeyd/renewal_trigger.cpp as ukeyd
// will, for the renewal.daemon test: reads `ukeyd --scan` output (or a
// ukeyd event) on stdin, the config from $UKEY_CONF, and prints the commands
// it would run, one JSON argv per line: first each Key's resume_command, then
// each certificate's renewal_command (with its days_left).
#include "renewal_trigger.h"

#include <iostream>
#include <iterator>

int main()
{
    auto cfg = ukey::load_tool_config(ukey::config_path());
    if (!cfg) {
        std::cerr << cfg.error().message << "\n";
        return 2;
    }
    std::string text(std::istreambuf_iterator<char>(std::cin), {});
    auto in = nlohmann::json::parse(text, nullptr, false);
    if (in.is_discarded()) {
        std::cerr << "not JSON\n";
        return 2;
    }
    nlohmann::json keys = in.contains("keys") ? in["keys"] : nlohmann::json::array({in["key"]});
    for (const auto& key : keys) {
        if (auto argv = ukey::daemon::resume_command(*cfg, key); !argv.empty())
            std::cout << nlohmann::json(argv).dump() << "\n";
        for (const auto& cert : key.value("certificates", nlohmann::json::array()))
            if (auto argv = ukey::daemon::renewal_command(*cfg, key, cert, cert.value("days_left", 0L)); !argv.empty())
                std::cout << nlohmann::json(argv).dump() << "\n";
    }
    return 0;
}
