#!/usr/bin/env bash
# daemon.expiry: three Keys (SoftHSM2 tokens) holding certificates that
# expire in 40, 6 and -1 days appear while ukeyd runs. Exactly one
# cert-expiring (threshold 7, days_left 6) and one cert-expired (days_left -1),
# nothing for the 40-day one (thresholds 28, 7, 3, 2, 1). A SIGHUP (reload and
# rescan) and a daemon restart fire none of them again: the crossings are in
# <state_dir>/ukeyd/expiry.json (0600 in a 0700 folder).
. "$(dirname "$0")/lib.sh"
need openssl pkcs11-tool

DAEMON_RESCAN=0.5
daemon_setup "
[expiry]
thresholds = [28, 7, 3, 2, 1]"
BOUND=$(scan_bound 20)   # a bound on waits that end when the event comes

# The certificates, from a throwaway CA (openssl ca: OpenSSL 3.0 has no
# x509 -not_after). ukey and ukeyd count days left as started days (6 days
# minus an hour = 6) and days past as whole days (25 hours ago = -1). The
# notAfter times sit an hour inside a day so that the few seconds the test
# takes cannot change the count.
now=$(date +%s)
d() { date -u -d "@$1" +%Y%m%d%H%M%SZ; }
soft_cert "in 40 days" "$T/c40.pem" "$(d $((now - 86400)))" "$(d $((now + 40 * 86400 - 3600)))"
soft_cert "in 6 days" "$T/c6.pem" "$(d $((now - 86400)))" "$(d $((now + 6 * 86400 - 3600)))"
soft_cert "expired" "$T/cx.pem" "$(d $((now - 10 * 86400)))" "$(d $((now - 86400 - 3600)))"
FP6=$(openssl x509 -in "$T/c6.pem" -outform DER | sha256sum | cut -d' ' -f1)
FPX=$(openssl x509 -in "$T/cx.pem" -outform DER | sha256sum | cut -d' ' -f1)

# Each Key is made complete in a staging token folder, then moved into the
# one ukeyd's scans see: it appears at once, with its certificate.
mkdir -m 0700 "$T/staging"
sed "s|$T/tokens|$T/staging|" "$T/softhsm2.conf" >"$T/staging.conf"
stage_key() {   # LABEL PEM
    local label=$1 pem=$2 out dir
    out=$(SOFTHSM2_CONF=$T/staging.conf softhsm2-util --init-token --free --label "$label" \
        --so-pin "$TEST_SO_PIN" --pin "$TEST_USER_PIN" 2>&1) || { show softhsm2-util "$out"; fail "init-token $label"; }
    openssl x509 -in "$pem" -outform DER -out "$pem.der"
    out=$(SOFTHSM2_CONF=$T/staging.conf timeout 30 pkcs11-tool --module "$SOFTHSM_MODULE" --token-label "$label" \
        --login --pin "$TEST_USER_PIN" --write-object "$pem.der" --type cert --id 01 --label "$label" 2>&1) \
        || { show pkcs11-tool "$out"; fail "writing the certificate of $label"; }
    dir=$(ls -t "$T/staging" | head -n 1)
    mv "$T/staging/$dir" "$T/tokens/$dir"
}

daemon_start
watch_start all

step "three Keys with certificates appear"
stage_key k40 "$T/c40.pem"
stage_key k6 "$T/c6.pem"
stage_key kx "$T/cx.pem"
wait_events all '.event == "key-inserted"' 3 "$BOUND"
wait_events all '.event == "cert-expiring"' 1 "$BOUND"
wait_events all '.event == "cert-expired"' 1 "$BOUND"
sleep "$(awk -v i="$DAEMON_RESCAN" 'BEGIN{print 3*i}')"   # a few more rescans: nothing more may come
expect_count all '.event == "cert-expiring"' 1 "cert-expiring"
expect_count all '.event == "cert-expired"' 1 "cert-expired"
expect_count all 'true' 5 "all events (3 key-inserted, 1 cert-expiring, 1 cert-expired)"

ev=$(events all '.event == "cert-expiring"')
jeq "$ev" '.threshold' 7 "cert-expiring"
jeq "$ev" '.days_left' 6 "cert-expiring"
jeq "$ev" '.key.label' '"k6"' "cert-expiring"
jeq "$ev" '.certificate.fingerprint' "\"$FP6\"" "cert-expiring"
jeq "$ev" '.certificate.label' '"k6"' "cert-expiring"
jeq "$ev" '.certificate.not_after' "\"$(iso_not_after "$T/c6.pem")\"" "cert-expiring"
jmatch "$ev" '.certificate.subject' 'CN=in 6 days' "cert-expiring"
ev=$(events all '.event == "cert-expired"')
jeq "$ev" '.days_left' -1 "cert-expired"
jeq "$ev" '.key.label' '"kx"' "cert-expired"
jeq "$ev" '.certificate.fingerprint' "\"$FPX\"" "cert-expired"
jeq "$ev" 'has("threshold")' false "cert-expired"
wait_hooks cert-expiring 1 "" "$DAEMON_WAIT"
wait_hooks cert-expired 1 "" "$DAEMON_WAIT"
h=$(hook_files cert-expiring)
assert_eq "$(hook_env "$h" UKEY_THRESHOLD)" 7 "hook UKEY_THRESHOLD"
assert_eq "$(hook_env "$h" UKEY_DAYS_LEFT)" 6 "hook UKEY_DAYS_LEFT"
assert_eq "$(hook_env "$h" UKEY_CERT_LABEL)" k6 "hook UKEY_CERT_LABEL"
assert_eq "$(hook_env "$h" UKEY_CERT_FINGERPRINT)" "$FP6" "hook UKEY_CERT_FINGERPRINT"
assert_eq "$(hook_env "$h" UKEY_TOKEN_LABEL)" k6 "hook UKEY_TOKEN_LABEL"
h=$(hook_files cert-expired)
assert_eq "$(hook_env "$h" UKEY_DAYS_LEFT)" -1 "hook UKEY_DAYS_LEFT (expired)"

step "ukey status shows the certificates with their days left"
uk status --socket "$SOCK"
expect_rc 0
assert_contains "$OUT" "Keys present: 3"
assert_contains "$OUT" "(40 days left)"
assert_contains "$OUT" "(6 days left)"
assert_contains "$OUT" "(EXPIRED 1 day ago)"
status_json
# docs/ukeyd.md, "Key object": every certificate carries days_left.
soft jeq "$ST" '[.keys[].certificates[].days_left] | sort' '[-1,6,40]' "status: the Keys' certificates' days_left"

step "the state file"
EJ=$T/state/ukeyd/expiry.json
[[ -f $EJ ]] || fail "no $EJ"
assert_eq "$(stat -c %a "$EJ")" 600 "mode of expiry.json"
assert_eq "$(stat -c %a "$T/state/ukeyd")" 700 "mode of its folder"
jq -e --arg f "$FP6" '.certificates | has($f)' "$EJ" >/dev/null || { cat "$EJ" >&2; fail "expiry.json does not hold the 6-day certificate"; }

step "SIGHUP: reload and rescan, no repeats"
scans=$(jr "$ST" '.status.scan.count')
kill -HUP "$UKEYD_PID"
wait_log "reloaded; rescanning"
status_scans_past() { local c; c=$("$UKEY" --json status --socket "$SOCK" | jq -r '.status.scan.count') && ((c >= $1)); }
wait_for "a scan after SIGHUP" "$BOUND" status_scans_past $((scans + 2))
sleep 1
expect_count all '.event | startswith("cert-")' 2 "cert events after SIGHUP"
assert_eq "$(hook_count cert-expiring)" 1 "cert-expiring hook runs after SIGHUP"

step "restart: no repeats"
watch_stop all
daemon_stop
daemon_start
# A fresh subscriber after the restart, once the first scan has published
# the three Keys (one that subscribed before it would get their
# key-inserted). A new token then, to be sure events flow.
wait_first_scan
watch_start again
new_token k-new
wait_events again '.event == "key-inserted"' 1 "$BOUND"
sleep 1
expect_count again '.event | startswith("cert-")' 0 "cert events after the restart"
expect_count again 'true' 1 "events after the restart (the new Key only)"
assert_eq "$(hook_count cert-expiring)" 1 "cert-expiring hook runs in all"
assert_eq "$(hook_count cert-expired)" 1 "cert-expired hook runs in all"
status_json
jeq "$ST" '.keys | length' 4 "Keys after the restart"
watch_stop again
daemon_stop
check_no_pin_in_logs
finish
