// systemd's readiness protocol (sd_notify) without libsystemd: one datagram
// to $NOTIFY_SOCKET. A no-op when not started by systemd with Type=notify.
#pragma once

#include <string>

namespace ukey::daemon {

void sd_notify(const std::string& state);

} // namespace ukey::daemon
