// Times as ukey shows and stores them: UTC ISO-8601 to the second, and whole
// days left until a moment (certificate expiry), counted the same by the CLI
// and ukeyd.
#pragma once

#include <ctime>
#include <string>

namespace ukey {

// "2026-11-21T09:30:00Z"
std::string iso8601(std::time_t t);
// Whole days from `now` to `t`: rounded up while t is ahead (1 in its last
// day), then 0 on the day it passed and minus the whole days since.
long days_until(std::time_t t, std::time_t now);

} // namespace ukey
