#!/usr/bin/env bash
# Firefox ESR logs into a site with a Key's certificate through ukey: a
# profile of the user's, `ukey browser enable` registers the module in its
# NSS database, the profile picks a certificate by itself
# (security.default_personal_cert), Firefox asks for the PIN in its dialog
# ("Password Required"), and the server verifies the Key's certificate.
. "$(dirname "$0")/lib.sh"
command -v firefox-esr >/dev/null || fail "firefox-esr is not installed (scripts/setup.sh installs it)"

PIN=$(openssl rand -hex 4)
pin "$PIN"
printf '%s' "$PIN" >"$T/pin"
make_ca
key_with_cert alice "Alice Firefox" "$T/ca" "$PIN"

# A profile as Firefox makes one (profiles.ini and an NSS database).
P=$T/.mozilla/firefox/ukey.default-esr
mkdir -p "$P"
printf '[Profile0]\nName=ukey\nIsRelative=1\nPath=ukey.default-esr\nDefault=1\n\n[General]\nStartWithLastProfile=1\nVersion=2\n' \
    >"$T/.mozilla/firefox/profiles.ini"
certutil -N -d "sql:$P" --empty-password || fail "certutil -N"
ok --json browser enable
jeq "$OUT" "[.browsers[] | select(.dir == \"$P\") | .ukey]" '["enabled"]' "the profile loads ukey"
certutil -A -d "sql:$P" -n "ukey test CA" -t C,, -i "$T/ca/ca.pem" || fail "certutil -A"
# No first-run pages, no network of its own; a certificate picked without
# asking (the chooser is Firefox's, not ukey's).
cat >"$P/user.js" <<'PREFS'
user_pref("security.default_personal_cert", "Select Automatically");
user_pref("browser.shell.checkDefaultBrowser", false);
user_pref("browser.aboutwelcome.enabled", false);
user_pref("browser.startup.homepage_override.mstone", "ignore");
user_pref("datareporting.policy.dataSubmissionEnabled", false);
user_pref("toolkit.telemetry.reportingpolicy.firstRun", false);
user_pref("app.update.enabled", false);
user_pref("app.normandy.enabled", false);
user_pref("network.captive-portal-service.enabled", false);
user_pref("network.connectivity-service.enabled", false);
user_pref("security.osclientcerts.autoload", false);
PREFS

step "Firefox sends alice's certificate, the PIN typed into its own dialog"
start_display
tls_server site "$T/ca/ca.pem"
bg browser firefox-esr --no-remote --profile "$P" "$URL"
BPID=$BGPID
login_through_browser site "Alice Firefox" 'Password Required' "$T/pin"
stop_browser
finish
