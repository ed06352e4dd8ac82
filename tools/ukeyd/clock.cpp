#include "clock.h"

#include <ctime>

namespace ukey::daemon {

static int64_t read(clockid_t c)
{
    timespec ts{};
    clock_gettime(c, &ts);
    return int64_t(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

int64_t now_ms() { return read(CLOCK_REALTIME); }
int64_t mono_ms() { return read(CLOCK_MONOTONIC); }

std::string iso_ms(int64_t epoch_ms)
{
    time_t s = epoch_ms / 1000;
    tm t{};
    gmtime_r(&s, &t);
    char buf[64];
    snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", t.tm_year + 1900, t.tm_mon + 1, t.tm_mday,
             t.tm_hour, t.tm_min, t.tm_sec, int(epoch_ms % 1000));
    return buf;
}

} // namespace ukey::daemon
