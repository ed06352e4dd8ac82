#!/usr/bin/env bash
# Must-show 3: bad CA answers give a clear error (exit 13) and change
# nothing on the Key: a wrong CA fingerprint, a certificate for another key,
# an expired certificate, a FAILURE status, garbage bytes, a server that
# hangs (--timeout), nobody listening, PENDING for ever. A PENDING answer is
# polled with CertPoll until the certificate comes; a CA without
# POSTPKIOperation gets the request by GET.
. "$(dirname "$0")/lib.sh"
: "${UKEY_FAKE_SCEP:?UKEY_FAKE_SCEP must name the ukey-fake-scep test server}"
cli_setup
scep_start
enrol_key Alice

snapshot() { key_snapshot Alice "$USER_PIN"; }
BEFORE=$(snapshot)

# bad URL FP WHAT MESSAGE [ARGS]: the renewal fails with exit 13, says
# MESSAGE, and the Key and journal folder are as before. RENEW_MS: how long
# the `ukey renew` command took (only it, not the checks after it).
RENEW_MS=0
bad() {
    local url=$1 fp=$2 what=$3 msg=$4 t0
    shift 4
    t0=$(now_ms)
    uk --json renew Alice --ca "$url" --ca-fingerprint "$fp" --challenge-file "$T/challenge" \
        --pin-fd 3 "$@" 3<<<"$USER_PIN"
    RENEW_MS=$(($(now_ms) - t0))
    jerror 13 "$what"
    assert_contains "$ERR" "$msg" "$what: message"
    log "$what: $(tail -n1 <<<"$ERR") (ukey renew: $RENEW_MS ms)"
    [[ "$(snapshot)" == "$BEFORE" ]] || { show before "$BEFORE"; show after "$(snapshot)"; fail "$what: the Key changed"; }
}

step "wrong CA fingerprint: nothing is sent"
n_before=$(grep -c "PKIOperation" "$T/scep/server.log" || true)
bad "$SCEP_URL" "$(printf '%064d' 0)" "wrong fingerprint" "not the pinned"
[[ $(grep -c "PKIOperation" "$T/scep/server.log" || true) == "$n_before" ]] \
    || fail "a request was sent to a CA whose fingerprint did not match"

for mode in wrongkey expired failure garbage; do
    step "fake CA: $mode"
    fake_start "$mode"
    case $mode in
        wrongkey) bad "$FAKE_URL" "$SCEP_FP" "$mode" "certificate for another key" ;;
        expired) bad "$FAKE_URL" "$SCEP_FP" "$mode" "certificate has expired" ;;
        failure) bad "$FAKE_URL" "$SCEP_FP" "$mode" "the CA refused the request: badRequest" ;;
        garbage) bad "$FAKE_URL" "$SCEP_FP" "$mode" "is not a SCEP message" ;;
    esac
    fake_stop
done

step "a CA that hangs: --timeout 2"
fake_start hang
bad "$FAKE_URL" "$SCEP_FP" "hang" "did not answer within 2 s" --timeout 2
# The fake CA does not answer for 600 s: a --timeout not kept would hold
# ukey until the test's own limit (UKEY_TEST_TIMEOUT, 60 s). 30 s tells
# that from a busy machine's slow ukey (the measured time is logged above).
((RENEW_MS <= 30000)) || fail "the hanging CA held ukey renew for $RENEW_MS ms (--timeout 2)"
fake_stop

step "nobody listening"
# OpenSSL retries a refused connection until the timeout.
bad "http://127.0.0.1:$(free_port)/scep" "$SCEP_FP" "closed port" "within 2 s" --timeout 2

step "PENDING for ever: CertPoll until --timeout, then the new key is removed"
fake_start stuck
bad "$FAKE_URL" "$SCEP_FP" "stuck" "has not issued the certificate within 3 s" --timeout 3
fake_stop

step "a CA without POSTPKIOperation: PKIOperation by GET"
fake_start get
ok --json renew Alice --ca "$FAKE_URL" --ca-fingerprint "$SCEP_FP" --challenge-file "$T/challenge" \
    --pin-fd 3 3<<<"$USER_PIN"
jeq "$OUT" '.state' '"completed"' "renewal by GET"
fake_stop
BEFORE=$(snapshot)

step "PENDING, then the certificate on CertPoll"
fake_start pending
ok --json renew Alice --ca "$FAKE_URL" --ca-fingerprint "$SCEP_FP" --challenge-file "$T/challenge" \
    --pin-fd 3 3<<<"$USER_PIN"
jeq "$OUT" '.state' '"completed"' "pending then issued"
NEW=$(jr "$OUT" '.key_id')
fake_stop
soft tls_check "$NEW" Alice "after PENDING + CertPoll"

finish
