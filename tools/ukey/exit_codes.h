// The ukey CLI's exit codes (docs/cli.md). Stable: scripts depend on them.
#pragma once

#include <ukey/pkcs11.h>

namespace ukey::cli {

enum Exit : int {
    ok = 0,
    failure = 1,         // anything not listed below
    usage = 2,           // bad command line
    no_key = 3,          // no Key present, or none matches the selection
    ambiguous = 4,       // several Keys match: name one
    wrong_pin = 5,       // a PIN was wrong (tries are left)
    pin_locked = 6,      // the PIN is locked
    pin_must_change = 7, // a transport PIN must be changed first
    key_error = 8,       // the Key or its driver failed (hardware, removed, full)
    not_found = 9,       // no such certificate or key on the Key
    setup = 10,          // ukey itself is not set up: module, config, backend
    cancelled = 11,      // the user said no
    bad_input = 12,      // a file or value given is unusable (bad PIN format, bad certificate, ...)
    ca_error = 13,       // the CA refused, failed, could not be reached or answered wrongly; the Key is unchanged
    incomplete = 14,     // a renewal stopped midway (Key removed?); the old certificate works: `ukey renew --resume`
    no_daemon = 15,      // ukeyd is not running, or went away (ukey status, ukey watch)
    audit_broken = 16,   // ukey audit verify: the audit log was tampered with or damaged
    doctor_warnings = 17, // ukey doctor: warnings, no problem
    doctor_problems = 18, // ukey doctor: at least one problem
    not_exportable = 19,  // a private key was asked for: it cannot leave the Key (key export, cert export --with-key)
};

// The exit code that fits a PKCS#11 result.
Exit exit_for(CK_RV rv);

} // namespace ukey::cli
