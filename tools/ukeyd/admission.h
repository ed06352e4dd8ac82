// How often a local user may connect to ukeyd's socket, and how refusals
// are logged (docs/ukeyd.md, "The socket"). A user looping connect/close
// must neither fill the log (one line per refusal was 100k lines in 4 s)
// nor keep the daemon busy enough that root's requests go unanswered.
// Root and the daemon's own user are never limited.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <string>
#include <unordered_map>
#include <utility>

namespace ukey::daemon {

// A token bucket per uid: `burst` connections at once, then `rate` a second.
class ConnectionBudget {
public:
    ConnectionBudget(double rate, double burst) : rate_(rate), burst_(burst) {}
    // Takes one connection from uid's budget at `now` (monotonic ms); false
    // when it is spent.
    bool take(uid_t uid, int64_t now);

private:
    struct Bucket {
        double tokens;
        int64_t at;
    };
    double rate_, burst_;
    std::unordered_map<uid_t, Bucket> buckets_;
};

// Warnings about one user's connections, in aggregate: within an interval
// the first few are logged as they come, the rest counted and logged as one
// summary line per user and reason when the interval ends. Root's and the
// daemon's own are always logged at once (the tests and the admin want them
// all, and they are no one's flood).
class RefusalLog {
public:
    static constexpr int64_t interval_ms = 60'000;
    static constexpr int logged_per_interval = 5;
    // Users summarised one by one per interval; beyond, one line for the rest.
    static constexpr std::size_t summarised_users = 16;
    // The uid for warnings that are no user's (accept failing).
    static constexpr uid_t nobody = uid_t(-1);

    // `line`: the whole warning; `reason`: its short form for the summary
    // ("not in allow_users/allow_groups").
    void note(uid_t uid, const std::string& line, const std::string& reason, int64_t now);
    // Logs the summaries once the interval is over (or now, if `force`).
    void flush(int64_t now, bool force = false);
    // When flush() has something to say (monotonic ms), 0 if nothing.
    int64_t deadline() const { return counted_.empty() && !others_ ? 0 : start_ + interval_ms; }

private:
    int64_t start_ = 0;
    int logged_ = 0;
    std::map<std::pair<uid_t, std::string>, uint64_t> counted_;
    uint64_t others_ = 0;
};

} // namespace ukey::daemon
