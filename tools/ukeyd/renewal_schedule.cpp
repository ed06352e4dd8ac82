#include "renewal_schedule.h"

#include <sys/wait.h>

namespace ukey::daemon {

bool RenewalSchedule::due(const std::string& key_id, int64_t now_ms, int64_t interval_ms) const
{
    if (running(key_id))
        return false;
    auto it = finished_at_.find(key_id);
    return it == finished_at_.end() || now_ms - it->second >= interval_ms;
}

void RenewalSchedule::finished(const std::string& key_id, int64_t now_ms)
{
    running_.erase(key_id);
    finished_at_[key_id] = now_ms;
}

RenewalOutcome renewal_outcome(int status)
{
    const int code = status >= 0 && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    if (code == 0)
        return {"finished", " finished"};
    if (code == 14)
        return {"incomplete", " is incomplete; it is resumed when the Key is next seen"};
    return {"failed", std::string(code == 13 ? " failed: the CA did not issue a certificate" : " failed") +
                          " (see the log lines above; `ukey renew` by hand says more)"};
}

} // namespace ukey::daemon
