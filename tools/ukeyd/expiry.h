// The expiry watch: which threshold crossings have been announced, per
// certificate (by fingerprint), kept in <state_dir>/ukeyd/expiry.json so a
// restart does not announce them again.
#pragma once

#include <nlohmann/json.hpp>

#include <ctime>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace ukey::daemon {

struct ExpiryNotice {
    bool expired = false;
    unsigned threshold = 0; // the smallest threshold crossed (cert-expiring)
    long days_left = 0;
};

// Whole days until notAfter, rounded up while it is still valid (a
// certificate issued to expire 6 days from now still reads 6 a minute later);
// once expired, minus the whole days since (0 on the first day): <= 0 means
// expired.
long days_left(std::time_t not_after, std::time_t now);

class ExpiryWatch {
public:
    ExpiryWatch() = default;
    // Loads the state; an unreadable file is logged and starts empty.
    void open(const std::filesystem::path& state_dir);
    void set_thresholds(std::vector<unsigned> largest_first) { thresholds_ = std::move(largest_first); }

    // What to announce for this certificate now, if anything; remembers it.
    std::optional<ExpiryNotice> check(const std::string& fingerprint, std::time_t not_after, std::time_t now);
    // Writes the state if it changed (atomic rename, fsync).
    void save();

private:
    std::filesystem::path file_;
    std::vector<unsigned> thresholds_{28, 7, 3, 2, 1};
    // fingerprint -> {"notified": threshold or 0 for expired, "not_after": unix}
    std::map<std::string, std::pair<long, long>> seen_;
    bool dirty_ = false;
};

} // namespace ukey::daemon
