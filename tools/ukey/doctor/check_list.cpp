// Every check, in the order they run: a new check is one file and one line
// here (and docs/doctor.md, which a test compares with `ukey doctor
// --list-checks`).
#include "doctor.h"

namespace ukey::cli::doctor {

extern const Check no_config, config_invalid, backend_fails, module_fails, pcscd_down, no_reader, card_not_recognised, no_key_found,
    not_initialised, pin_state_damaged, user_pin_locked, so_pin_locked, pin_tries_low, transport_pin,
    cert_expired, cert_expiring, cert_not_yet_valid, chain_incomplete, revocation, cert_without_key, several_client_certs, renewal_unfinished, browser_module_missing;
extern const Check key_without_cert, url_not_checked, server_expects_other_ca,
    auto_select_other_cert, hardware_error;
extern const Check renewal_refused, reader_held_exclusively, browser_loads_backend;
extern const Check backend_registered_directly, key_through_other_module, same_key_twice, browser_cert_hidden;

std::span<const Check* const> checks()
{
    static const Check* const all[] = {
        &no_config,       &config_invalid,    &backend_fails,     &module_fails,       &pcscd_down,
        &no_reader, &card_not_recognised,       &no_key_found,      &not_initialised,   &pin_state_damaged,  &user_pin_locked,
        &so_pin_locked,   &pin_tries_low,     &transport_pin,     &cert_expired,       &cert_expiring,
        &cert_not_yet_valid, &chain_incomplete, &revocation, &cert_without_key, &several_client_certs, &renewal_unfinished, &browser_module_missing,
        &key_without_cert, &url_not_checked, &server_expects_other_ca, &auto_select_other_cert,
        &hardware_error,
        &renewal_refused,
        &reader_held_exclusively,
        &browser_loads_backend,
        &backend_registered_directly, &key_through_other_module, &same_key_twice, &browser_cert_hidden,
    };
    return all;
}

} // namespace ukey::cli::doctor
