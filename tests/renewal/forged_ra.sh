#!/usr/bin/env bash
# Security (docs/security.md, SCEP RA trust): a man in the middle answers
# GetCACert with the real CA plus an "RA" certificate that bears the CA's
# name and key identifier but is signed by his own key. `ukey enroll` and
# `ukey renew` stop with the CA error (exit 13) before any PKIOperation, so
# nothing carrying the challenge password leaves the machine, and the Key
# and the journal folder stay as they were. An expired RA is refused the
# same way; an RA the CA issued without digitalSignature may receive the
# request but its signature on the answer is refused; an RA the CA issued
# properly works (request encrypted to it, answer signed by it).
. "$(dirname "$0")/lib.sh"
cli_setup
scep_start
enrol_key Alice
ALICE_PIN=$USER_PIN

BOB_PIN=Us3r-$RANDOM-bOb
init_key Bob "S0-$RANDOM-bOb" "$BOB_PIN"

snapshot() { key_snapshot Alice "$ALICE_PIN"; key_snapshot Bob "$BOB_PIN"; }
BEFORE=$(snapshot)
unchanged() {
    [[ "$(snapshot)" == "$BEFORE" ]] || { show before "$BEFORE"; show after "$(snapshot)"; fail "$1: the Key changed"; }
}
# pki_ops: how many PKIOperation requests the fake CA has received.
pki_ops() { grep -c "PKIOperation received" "$T/fake.log" || true; }

# refused WHAT MESSAGE ukey-args...: exit 13 (the CA error), MESSAGE said,
# no PKIOperation reached the fake CA, no challenge seen by it, nothing changed.
refused() {
    local what=$1 msg=$2 n0
    shift 2
    n0=$(pki_ops)
    uk --json "$@"
    jerror 13 "$what"
    assert_contains "$ERR" "$msg" "$what: message"
    log "$what: $(tail -n1 <<<"$ERR")"
    [[ $(pki_ops) == "$n0" ]] || { cat "$T/fake.log" >&2; fail "$what: a request was sent to the fake CA"; }
    ! grep -q "challenge:" "$T/fake.log" || fail "$what: the fake CA saw a challenge password"
    unchanged "$what"
}

# fake CA MODE: the fake CA started; RENEW: Alice's renewal against it.
fake() {
    fake_start "$1"
    RENEW=(renew Alice --ca "$FAKE_URL" --ca-fingerprint "$SCEP_FP" --challenge-file "$T/challenge" --pin-fd 3)
}

step "forged RA (the CA's name and key identifier, the attacker's signature): renew stops"
fake forged-ra
refused "renew, forged RA" "does not verify against the pinned CA" "${RENEW[@]}" 3<<<"$ALICE_PIN"
assert_contains "$ERR" "nothing was sent" "renew, forged RA: message"

step "forged RA: enroll stops too"
refused "enroll, forged RA" "does not verify against the pinned CA" \
    enroll Bob --ca "$FAKE_URL" --ca-fingerprint "$SCEP_FP" --subject "/CN=Bob/O=ukey tests" \
    --challenge-file "$T/challenge" --pin-fd 3 3<<<"$BOB_PIN"
fake_stop

step "an RA the CA issued, but expired: refused before anything is sent"
fake ra-expired
refused "renew, expired RA" "certificate has expired" "${RENEW[@]}" 3<<<"$ALICE_PIN"
fake_stop

step "an RA the CA issued for encryption only: its signature on the answer is refused"
fake ra-nosign
n0=$(pki_ops)
uk --json "${RENEW[@]}" 3<<<"$ALICE_PIN"
jerror 13 "RA without digitalSignature"
assert_contains "$ERR" "not signed by the pinned CA or its verified RA" "RA without digitalSignature: message"
(($(pki_ops) == n0 + 1)) || fail "RA without digitalSignature: expected one PKIOperation"
unchanged "RA without digitalSignature"
fake_stop

step "an RA the CA issued properly: the renewal goes through it"
fake ra
uk --json "${RENEW[@]}" 3<<<"$ALICE_PIN"
expect_rc 0 "renew through a proper RA"
jeq "$OUT" '.state' '"completed"' "renew through a proper RA"
NEW=$(jr "$OUT" '.key_id')
grep -q "challenge: $SCEP_CHALLENGE" "$T/fake.log" || fail "the RA did not decrypt the request"
fake_stop
USER_PIN=$ALICE_PIN
soft tls_check "$NEW" Alice "after renewal through the RA"

finish
