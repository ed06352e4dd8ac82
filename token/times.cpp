#include "token/times.h"

namespace ukey {

std::string iso8601(std::time_t t)
{
    struct tm tm {};
    if (!gmtime_r(&t, &tm))
        return {};
    char buf[32];
    strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

long days_until(std::time_t t, std::time_t now)
{
    // Rounded up while valid: a certificate issued "for 6 days" reads 6 all
    // day, and 0 only once it has expired. ukeyd's thresholds count the same.
    if (t > now)
        return static_cast<long>((t - now + 86399) / 86400);
    return -static_cast<long>((now - t) / 86400);
}

} // namespace ukey
