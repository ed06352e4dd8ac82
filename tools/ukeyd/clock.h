// Time for events and deadlines.
#pragma once

#include <cstdint>
#include <string>

namespace ukey::daemon {

int64_t now_ms();          // CLOCK_REALTIME, for event times
int64_t mono_ms();         // CLOCK_MONOTONIC, for deadlines and timeouts
std::string iso_ms(int64_t epoch_ms); // "2026-11-21T12:00:00.123Z"

} // namespace ukey::daemon
