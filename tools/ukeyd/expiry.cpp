#include "expiry.h"

#include "token/log.h"

#include "client/certs.h"
#include "client/state_file.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include <unistd.h>

namespace ukey::daemon {

using nlohmann::json;

long days_left(std::time_t not_after, std::time_t now)
{
    return client::days_until(not_after, now); // the CLI counts the same way
}

void ExpiryWatch::open(const std::filesystem::path& state_dir)
{
    file_ = state_dir / "ukeyd" / "expiry.json";
    seen_.clear();
    std::ifstream in(file_);
    if (!in)
        return;
    std::stringstream text;
    text << in.rdbuf();
    json j = json::parse(text.str(), nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("certificates") || !j["certificates"].is_object()) {
        log::warning("ukeyd: " + file_.string() +
                     " is damaged; starting the expiry watch afresh (some reminders may repeat)");
        return;
    }
    for (auto& [fp, v] : j["certificates"].items()) {
        if (v.is_object() && v.value("notified", json()).is_number_integer() &&
            v.value("not_after", json()).is_number_integer())
            seen_[fp] = {v["notified"].get<long>(), v["not_after"].get<long>()};
    }
}

std::optional<ExpiryNotice> ExpiryWatch::check(const std::string& fingerprint, std::time_t not_after, std::time_t now)
{
    const long left = days_left(not_after, now);
    ExpiryNotice n;
    n.days_left = left;
    long level; // what this state would be recorded as: 0 expired, else the threshold
    if (left <= 0) {
        n.expired = true;
        level = 0;
    } else {
        std::optional<unsigned> crossed;
        for (unsigned t : thresholds_)
            if (left <= long(t))
                crossed = t; // thresholds are largest first: the last match is the smallest
        if (!crossed)
            return std::nullopt;
        n.threshold = *crossed;
        level = long(*crossed);
    }
    auto it = seen_.find(fingerprint);
    if (it != seen_.end() && it->second.first <= level)
        return std::nullopt; // announced already (or a later stage was)
    seen_[fingerprint] = {level, long(not_after)};
    dirty_ = true;
    return n;
}

void ExpiryWatch::save()
{
    if (!dirty_ || file_.empty())
        return;
    // Forget certificates long gone: expired more than a year ago.
    const long cutoff = long(std::time(nullptr)) - 366L * 86400;
    for (auto it = seen_.begin(); it != seen_.end();)
        it = it->second.second < cutoff ? seen_.erase(it) : std::next(it);
    json certs = json::object();
    for (const auto& [fp, v] : seen_)
        certs[fp] = {{"notified", v.first}, {"not_after", v.second}};
    const std::string text = json{{"version", 1}, {"certificates", certs}}.dump(1) + "\n";
    if (auto e = client::write_private_file(file_, text); !e) {
        log::error("ukeyd: cannot keep the expiry reminders: " + e.error().message);
        return;
    }
    dirty_ = false;
}

} // namespace ukey::daemon
