#!/usr/bin/env bash
# Chromium logs into a site with a Key's certificate through ukey:
#   1. one Key (alice): `ukey browser enable` registers the module in
#      Chromium's NSS database, `ukey browser enable --auto-select URL alice`
#      writes the policy that picks its certificate; Chromium, started on
#      the site, asks for the PIN in its dialog ("Unlock Security Device"),
#      and the server verifies alice's certificate;
#   2. two Keys (bob's certificate from a second CA): `--auto-select URL2 bob`
#      names bob's issuer, the server accepts both CAs, and it is bob's
#      certificate Chromium sends. Chromium reads the slot list once, when it
#      loads the module: bob, made while it ran, is seen after a restart
#      (docs/testing.md: Chromium offers no way to look again).
. "$(dirname "$0")/lib.sh"
command -v chromium >/dev/null || fail "chromium is not installed (scripts/setup.sh installs it)"

PIN=$(openssl rand -hex 4)
pin "$PIN"
printf '%s' "$PIN" >"$T/pin"
make_ca
key_with_cert alice "Alice Browser" "$T/ca" "$PIN"

start_display
ok browser enable
[[ -f $T/.pki/nssdb/pkcs11.txt ]] || fail "ukey browser enable made no ~/.pki/nssdb"
# The server's certificate comes from the test CA: trusted as a site's CA.
certutil -A -d "sql:$T/.pki/nssdb" -n "ukey test CA" -t C,, -i "$T/ca/ca.pem" || fail "certutil -A"

chromium_start() {
    bg browser chromium --no-sandbox --user-data-dir="$T/chromium" --no-first-run --no-default-browser-check \
        --disable-gpu --disable-dev-shm-usage --password-store=basic --disable-background-networking \
        --disable-component-update --disable-sync --window-size=1024,768 "$1"
    BPID=$BGPID
}

step "one Key: Chromium sends alice's certificate, the PIN typed into its own dialog"
tls_server site1 "$T/ca/ca.pem"
ok --json browser enable --auto-select "$URL" alice
jeq "$OUT" '.auto_select_changed.filter' '{"ISSUER":{"CN":"ukey test CA"}}' "the policy's filter"
chromium_start "$URL"
login_through_browser site1 "Alice Browser" 'Unlock Security Device' "$T/pin"
stop_browser

step "two Keys: --auto-select names bob's issuer, and bob's certificate is the one sent"
second_ca ca2 "ukey second CA"
key_with_cert bob "Bob Browser" "$T/ca2" "$PIN"
cat "$T/ca/ca.pem" "$T/ca2/ca.pem" >"$T/both-cas.pem"
tls_server site2 "$T/both-cas.pem"
ok --json browser enable --auto-select "$URL" bob
jeq "$OUT" '.auto_select_changed.filter' '{"ISSUER":{"CN":"ukey second CA"}}' "bob's issuer"
jeq "$OUT" '.others_match' 0 "no certificate on alice matches bob's filter"
chromium_start "$URL"
login_through_browser site2 "Bob Browser" 'Unlock Security Device' "$T/pin"
! client_seen site2 "Alice Browser" || fail "Chromium sent alice's certificate to the second site"
stop_browser
finish
