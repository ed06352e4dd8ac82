#!/usr/bin/env bash
# ukey browser --system and --auto-select (as root): Firefox's policies.json
# (SecurityDevices Add/Delete; the administrator's other policies kept; a
# broken file refused and left as it was) and Chromium's managed
# AutoSelectCertificateForUrls rule built from the Key's certificate: its
# issuer CN by default, its subject CN with --by-subject; a second Key with a
# certificate from the same CA is counted (P13) and named in a warning.
# Text and --json. Runs in a private mount namespace whose /etc/firefox and
# /etc/chromium are the test's own.
. "$(dirname "$0")/lib.sh"
[[ $EUID -eq 0 ]] || skip "writes system policies: root only"
if [[ -z ${UKEY_POLICY_PRIVATE:-} ]]; then
    export UKEY_POLICY_PRIVATE=1
    # The folders must exist to be mounted over (empty ones, where the
    # browsers look anyway).
    (umask 022 && mkdir -p /etc/firefox /etc/chromium) || fail "cannot make /etc/firefox, /etc/chromium"
    exec unshare --mount --propagation private -- bash "$0" "$@"
fi
cli_setup
mkdir -p "$T/etc/firefox" "$T/etc/chromium"
mount --bind "$T/etc/firefox" /etc/firefox || fail "cannot mount over /etc/firefox"
mount --bind "$T/etc/chromium" /etc/chromium || fail "cannot mount over /etc/chromium"
FF=/etc/firefox/policies/policies.json
CH=/etc/chromium/policies/managed/ukey-auto-select.json
MODULE=$(readlink -f "$UKEY_MODULE")

new_pins SO U1 U2
# key_with_cert LABEL USER_PIN CN: a Key with a key pair and a certificate
# for it from the test CA.
key_with_cert() {
    init_key "$1" "$SO" "$2"
    ok key generate "$1" --type ec-p256 --id 31 --label login --pin-fd 3 3<<<"$2"
    ok csr "$1" --key 31 --subject "/CN=$3" --out "$T/$1.csr" --pin-fd 3 3<<<"$2"
    issue_cert "$T/$1.csr" "$T/$1.pem" now 100
    ok cert write "$1" --file "$T/$1.pem" --label login --pin-fd 3 3<<<"$2"
}
key_with_cert alice "$U1" "Alice Zhang"

step "status --system: nothing yet"
ok --json browser status --system
jeq "$OUT" '.system' "{\"auto_select\":[],\"firefox\":{\"file\":\"$FF\",\"ukey\":\"disabled\"}}"

step "enable --system: policies.json adds ukey's module, the administrator's other policies kept"
mkdir -p /etc/firefox/policies
printf '{"policies": {"DisableTelemetry": true, "SecurityDevices": {"Add": {"bank": "/opt/bank.so"}}}}\n' >"$FF"
umask 077
ok --json browser enable --system
umask 022
jeq "$OUT" '.system.firefox' "{\"changed\":true,\"file\":\"$FF\",\"ukey\":\"enabled\"}"
jeq "$(cat "$FF")" '.' "{\"policies\":{\"DisableTelemetry\":true,\"SecurityDevices\":{\"Add\":{\"bank\":\"/opt/bank.so\",\"ukey\":\"$MODULE\"}}}}"
assert_eq "$(stat -c %a "$FF")" 644 "policies.json readable by every user's Firefox"
ok browser enable --system
assert_contains "$OUT" "Firefox, every profile ($FF): ukey enabled" "enable again (text)"
assert_not_contains "$OUT" "(now)" "enable again changes nothing"

step "disable --system: out of Add, into Delete (Firefox removes it from the profiles too)"
ok --json browser disable --system
jeq "$OUT" '.system.firefox | [.ukey, .changed]' '["disabled",true]'
jeq "$(cat "$FF")" '.policies' '{"DisableTelemetry":true,"SecurityDevices":{"Add":{"bank":"/opt/bank.so"},"Delete":["ukey"]}}'
ok --json browser enable --system
jeq "$(cat "$FF")" '.policies.SecurityDevices' "{\"Add\":{\"bank\":\"/opt/bank.so\",\"ukey\":\"$MODULE\"}}"

step "a policies.json that is not JSON: refused, left as it was"
printf '{"policies": {' >"$FF"
uk --json browser disable --system
jerror 10 "broken policies.json"
assert_contains "$(jr "$OUT" .error.message)" "$FF is not a JSON object" "broken policies.json"
assert_eq "$(cat "$FF")" '{"policies": {' "broken policies.json untouched"
rm "$FF"

step "--auto-select: Chromium picks alice's certificate by its issuer's CN"
ok --json browser enable --auto-select "https://127.0.0.1:8443/login?x=1" alice
jeq "$OUT" '.auto_select_changed' "{\"changed\":true,\"file\":\"$CH\",\"filter\":{\"ISSUER\":{\"CN\":\"ukey test CA\"}},\"pattern\":\"https://127.0.0.1:8443\"}"
jeq "$OUT" '.others_match' 0
jeq "$(cat "$CH")" '.AutoSelectCertificateForUrls | map(fromjson)' '[{"filter":{"ISSUER":{"CN":"ukey test CA"}},"pattern":"https://127.0.0.1:8443"}]'
assert_eq "$(stat -c %a "$CH") $(stat -c %a /etc/chromium/policies/managed)" "644 755" "policy file and folder modes"

step "a second Key with a certificate from the same CA: the issuer filter picks either (P13), --by-subject only alice's"
key_with_cert bob "$U2" "Bob Li"
ok --json browser enable --auto-select https://127.0.0.1:8443 alice
jeq "$OUT" '.auto_select_changed.changed' false
jeq "$OUT" '.others_match' 1
ok browser enable --auto-select https://127.0.0.1:8443 alice
assert_contains "$OUT" "Warning: 1 certificate(s) on other Keys match that filter too" "P13 warning"
ok --json browser enable --auto-select https://127.0.0.1:8443 alice --by-subject
jeq "$OUT" '[.auto_select_changed.filter, .auto_select_changed.changed, .others_match]' '[{"SUBJECT":{"CN":"Alice Zhang"}},true,0]'
ok --json browser enable --auto-select https://gov.example.cn bob --by-subject
jeq "$(cat "$CH")" '.AutoSelectCertificateForUrls | map(fromjson)' '[{"filter":{"SUBJECT":{"CN":"Alice Zhang"}},"pattern":"https://127.0.0.1:8443"},{"filter":{"SUBJECT":{"CN":"Bob Li"}},"pattern":"https://gov.example.cn"}]'
ok browser status --system
assert_contains "$OUT" "Chromium picks, on https://gov.example.cn, the certificate whose subject is CN=Bob Li" "status text"

step "refusals: not https, several certificates without --id, not root"
uk --json browser enable --auto-select http://127.0.0.1 alice
jerror 2 "--auto-select http://"
soft_cert "Other" "$T/other.pem" now 10
ok cert write alice --file "$T/other.pem" --label other --force --pin-fd 3 3<<<"$U1"
uk --json browser enable --auto-select https://127.0.0.1:8443 alice
jerror 4 "two certificates"
assert_contains "$OUT" "--id" "two certificates: names --id"
ok --json browser enable --auto-select https://127.0.0.1:8443 alice --id 31 --by-subject
jeq "$OUT" '.auto_select_changed.changed' false
UK_AS=(setpriv --reuid=nobody --regid=nogroup --clear-groups) UK_WHO="(nobody) "
uk --json browser enable --system
UK_AS=() UK_WHO=
jerror 10 "not root"
assert_contains "$(jr "$OUT" .error.message)" "run it as root" "not root"

step "disable --auto-select one site; disable --system takes the rest and the file"
ok --json browser disable --auto-select https://gov.example.cn/
jeq "$OUT" '.auto_select_changed' '{"changed":true,"pattern":"https://gov.example.cn"}'
jeq "$(cat "$CH")" '.AutoSelectCertificateForUrls | length' 1
ok --json browser disable --system
[[ ! -e $CH ]] || fail "ukey's auto-select file is still there"
jeq "$OUT" '.system.auto_select' '[]'

check_no_pin_leaks
finish
