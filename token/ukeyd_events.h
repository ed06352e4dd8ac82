// The events ukeyd emits (docs/ukeyd.md, "Events"), named once for the
// daemon, its hooks' config, `ukey watch` and the module's subscription.
#pragma once

#include <array>
#include <cstddef>
#include <optional>
#include <string_view>

namespace ukey {

enum class UkeydEvent {
    key_inserted,
    key_removed,
    reader_added,
    reader_removed,
    pin_locked,
    cert_expiring,
    cert_expired,
    pcsc_down,
    pcsc_up,
    renewal,
};

// Indexed by UkeydEvent.
inline constexpr std::array<std::string_view, 10> ukeyd_event_names{
    "key-inserted", "key-removed",   "reader-added", "reader-removed", "pin-locked",
    "cert-expiring", "cert-expired", "pcsc-down",    "pcsc-up",        "renewal"};

constexpr std::string_view event_name(UkeydEvent e)
{
    return ukeyd_event_names[static_cast<std::size_t>(e)];
}

constexpr std::optional<UkeydEvent> event_named(std::string_view name)
{
    for (std::size_t i = 0; i < ukeyd_event_names.size(); ++i)
        if (ukeyd_event_names[i] == name)
            return static_cast<UkeydEvent>(i);
    return std::nullopt;
}

} // namespace ukey
