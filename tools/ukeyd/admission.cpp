#include "admission.h"

#include "token/log.h"

#include <algorithm>

#include <unistd.h>

namespace ukey::daemon {

namespace {

bool exempt(uid_t uid)
{
    return uid == 0 || uid == geteuid();
}

} // namespace

bool ConnectionBudget::take(uid_t uid, int64_t now)
{
    if (exempt(uid))
        return true;
    // Forget users whose budget is full again, so the table stays small.
    if (buckets_.size() > 1024)
        std::erase_if(buckets_, [&](const auto& e) {
            return e.second.tokens + double(now - e.second.at) * rate_ / 1000.0 >= burst_;
        });
    auto [it, fresh] = buckets_.try_emplace(uid, Bucket{burst_, now});
    Bucket& b = it->second;
    b.tokens = std::min(burst_, b.tokens + double(std::max<int64_t>(0, now - b.at)) * rate_ / 1000.0);
    b.at = now;
    if (b.tokens < 1.0)
        return false;
    b.tokens -= 1.0;
    return true;
}

void RefusalLog::note(uid_t uid, const std::string& line, const std::string& reason, int64_t now)
{
    if (exempt(uid)) {
        log::warning(line);
        return;
    }
    flush(now);
    // An interval ends with its summaries (flush) or, if it had none, here.
    if (start_ == 0 || now - start_ >= interval_ms) {
        start_ = now;
        logged_ = 0;
    }
    if (logged_ < logged_per_interval) {
        ++logged_;
        log::warning(line + (logged_ == logged_per_interval ? " (more such lines are summarised every " +
                                                                   std::to_string(interval_ms / 1000) + " s)"
                                                             : ""));
        return;
    }
    const auto key = std::make_pair(uid, reason);
    if (auto it = counted_.find(key); it != counted_.end())
        ++it->second;
    else if (counted_.size() < summarised_users)
        counted_.emplace(key, 1);
    else
        ++others_;
}

void RefusalLog::flush(int64_t now, bool force)
{
    if (counted_.empty() && !others_)
        return;
    if (!force && now - start_ < interval_ms)
        return;
    const std::string span = std::to_string(std::max<int64_t>(1, (now - start_ + 999) / 1000)) + " s";
    for (const auto& [key, n] : counted_)
        log::warning("ukeyd: " + std::to_string(n) + " more " +
                     (key.first == nobody ? std::string() : "from uid " + std::to_string(key.first) + " ") +
                     "in the last " + span + ": " + key.second);
    if (others_)
        log::warning("ukeyd: " + std::to_string(others_) + " more from other users in the last " + span);
    counted_.clear();
    others_ = 0;
    // The next interval starts now and may log a few lines at once again.
    start_ = now;
    logged_ = 0;
}

} // namespace ukey::daemon
