#!/usr/bin/env bash
# P15: a CA that refuses a renewal by policy. Debian's scepserver with
# -allowrenew 30 renews only certificates that expire within 30 days, so the
# renewal of a fresh one is refused: `ukey renew` says so in plain words
# (the failInfo, and that many CAs re-issue instead of renewing), leaves the
# Key as it was, and keeps the CA's answer (0600) for `ukey doctor`, which
# reports P15.renewal-refused. Once a CA renews it, the record is gone and
# so is the finding.
. "$(dirname "$0")/lib.sh"
cli_setup
scep_start -allowrenew 30

step "enrol (allowed), then renew: refused by the CA's renewal window"
enrol_key Alice
BEFORE=$(key_snapshot Alice "$USER_PIN")
uk --json renew Alice --ca "$SCEP_URL" --ca-fingerprint "$SCEP_FP" --challenge-file "$T/challenge" \
    --pin-fd 3 3<<<"$USER_PIN"
expect_rc 13 "ukey renew refused by the CA"
jerror 13 "ukey renew refused by the CA"
msg=$(jr "$OUT" '.error.message')
assert_contains "$msg" "the CA refused the request: " "the refusal"
assert_contains "$msg" "many CAs renew only in the last weeks before expiry, or do not renew at all and re-issue instead: ask your CA for a new certificate" "the refusal explains P15"
assert_contains "$msg" "nothing on the Key was changed" "the refusal"
[[ "$(key_snapshot Alice "$USER_PIN")" == "$BEFORE" ]] || fail "the refused renewal changed the Key"
rec=$(ls "$T/state/ca-refusals"/*.json 2>/dev/null) || fail "no record of the CA's refusal in $T/state/ca-refusals"
[[ $(stat -c %a "$rec") == 600 && $(stat -c %a "$T/state/ca-refusals") == 700 ]] \
    || fail "the refusal record is not 0600 in a 0700 folder"
jeq "$(cat "$rec")" '.operation' '"renew"' "the record"
jeq "$(cat "$rec")" '.cert_label' '"Alice"' "the record"

step "ukey doctor explains it (P15.renewal-refused)"
uk --json doctor Alice --offline
expect_rc 17 "doctor after a refused renewal"
f=$(jq -c '[.findings[] | select(.id == "P15.renewal-refused")]' <<<"$OUT")
jeq "$f" 'length' 1 "the P15 finding"
jeq "$f" '.[0].severity' '"warning"' "the P15 finding"
what=$(jr "$f" '.[0].what')
assert_contains "$what" "the CA at $SCEP_URL refused to renew the certificate 'Alice' on " "P15's sentence"
assert_contains "$what" "usually the CA's policy, not a fault" "P15's sentence"
assert_contains "$(jr "$f" '.[0].fix')" "ask your CA for a new certificate" "P15's fix"
uk doctor Alice --offline
assert_contains "$OUT" "[P15.renewal-refused]" "the text names P15"

step "a damaged record is reported, not trusted"
cp "$rec" "$T/rec.saved"
printf '{"time":"yesterday"}' >"$rec"
uk --json doctor Alice --offline
jeq "$OUT" '[.findings[] | select(.id == "P15.renewal-refused")][0].severity' '"note"' "a damaged record"
assert_contains "$(jr "$OUT" '[.findings[] | select(.id == "P15.renewal-refused")][0].what')" \
    "cannot be read" "a damaged record"
cp "$T/rec.saved" "$rec"

step "a CA that renews: the certificate is renewed, the record and the finding are gone"
scep_stop
scep_start
uk --json renew Alice --ca "$SCEP_URL" --ca-fingerprint "$SCEP_FP" --challenge-file "$T/challenge" \
    --pin-fd 3 3<<<"$USER_PIN"
expect_rc 0 "ukey renew"
[[ ! -e $rec ]] || fail "the refusal record is still there after a renewal"
uk --json doctor Alice --offline
jeq "$OUT" '[.findings[] | select(.id == "P15.renewal-refused")] | length' 0 "doctor after the renewal"
scep_stop
log "PASS"
