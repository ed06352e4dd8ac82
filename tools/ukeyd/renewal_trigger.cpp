#include "renewal_trigger.h"

#include "client/journal.h"

#include <algorithm>

#include <unistd.h>

namespace ukey::daemon {

namespace {

std::string str(const nlohmann::json& j, const char* field)
{
    auto it = j.find(field);
    return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// The Key as `ukey` selects it: its stable slot ID (docs/architecture.md).
std::string key_selector(const nlohmann::json& key)
{
    if (str(key, "source") == "pcsc")
        return {};
    auto it = key.find("slot_id");
    if (it == key.end() || !it->is_number_integer() || it->get<long long>() <= 0)
        return {};
    return std::to_string(it->get<long long>());
}

} // namespace

std::filesystem::path ukey_binary(const ToolConfig& cfg)
{
    if (!cfg.renewal.ukey.empty())
        return cfg.renewal.ukey;
    std::error_code ec;
    auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
    if (!ec) {
        auto next = self.parent_path() / "ukey";
        if (access(next.c_str(), X_OK) == 0)
            return next;
        // Installed: ukeyd in sbin, ukey in bin.
        auto bin = self.parent_path().parent_path() / "bin" / "ukey";
        if (access(bin.c_str(), X_OK) == 0)
            return bin;
    }
    return "/usr/bin/ukey";
}

std::vector<std::string> renewal_command(const ToolConfig& cfg, const nlohmann::json& key, const nlohmann::json& cert,
                                         long days_left)
{
    const std::string slot = key_selector(key);
    const std::string id = str(cert, "id");
    const std::string label = str(cert, "label");
    const std::string subject = str(cert, "subject"), issuer = str(cert, "issuer");
    if (slot.empty() || id.empty() || label.rfind("superseded ", 0) == 0 || (!subject.empty() && subject == issuer))
        return {};
    const RenewalCa* ca = renewal_ca_for(cfg, str(key, "label"), str(key, "serial"), issuer);
    if (!ca)
        return {};
    const long threshold = ca->threshold_days ? ca->threshold_days : cfg.renewal.threshold_days;
    if (days_left > threshold)
        return {};
    return {ukey_binary(cfg).string(), "--json", "renew", slot, "--cert", id, "--ca-name", ca->name, "--unattended"};
}

std::vector<std::string> resume_command(const ToolConfig& cfg, const nlohmann::json& key)
{
    const std::string slot = key_selector(key);
    const std::string identity = str(key, "id");
    if (slot.empty() || identity.empty())
        return {};
    std::error_code ec;
    if (!std::filesystem::exists(client::journal_path(cfg.state_dir, identity), ec))
        return {};
    return {ukey_binary(cfg).string(), "--json", "renew", slot, "--resume", "--unattended"};
}

double renewal_timeout_s(const ToolConfig& cfg)
{
    double ca = cfg.renewal.timeout_s;
    for (const auto& c : cfg.renewal.cas)
        ca = std::max(ca, c.timeout_s);
    // GetCACaps, GetCACert and the request each get the timeout, the PENDING polls one more.
    return 4 * ca + 120;
}

} // namespace ukey::daemon
