// When ukeyd runs automatic renewals (docs/renewal.md): at most one `ukey
// renew` per Key at a time, and at most one attempt per Key per expiry
// check interval (a day by default), so that a CA that is down is not
// hammered, and a CA that issues certificates shorter than the threshold
// does not get a renewal after every scan. A resume of an unfinished
// renewal only waits for a running one.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>

namespace ukey::daemon {

class RenewalSchedule {
public:
    bool running(const std::string& key_id) const { return running_.count(key_id) > 0; }
    // A renewal for the Key may start at now_ms (wall clock).
    bool due(const std::string& key_id, int64_t now_ms, int64_t interval_ms) const;
    void started(const std::string& key_id) { running_.insert(key_id); }
    void finished(const std::string& key_id, int64_t now_ms);
    const std::set<std::string>& running_keys() const { return running_; }

private:
    std::set<std::string> running_;
    std::map<std::string, int64_t> finished_at_;
};

// How a `ukey renew` ended, for the `renewal` event: its state and the end
// of its message (docs/renewal.md, exit codes 13 and 14).
struct RenewalOutcome {
    const char* state;   // finished | incomplete | failed
    std::string message; // after "<kind> of <Key>"
};
// status: from waitpid, or -1 when it was killed for its timeout.
RenewalOutcome renewal_outcome(int status);

} // namespace ukey::daemon
