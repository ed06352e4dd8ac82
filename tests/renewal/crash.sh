#!/usr/bin/env bash
# Must-show 2: `ukey renew` SIGKILLs itself right after the journal records
# step N (UKEY_TEST_CRASH_AFTER=N, test-only), for every N. After each crash
# the Key still has a working pair (TLS client auth through libp11), `ukey
# renew --resume` rolls the journal back (N < 4: no certificate yet) or
# completes it (N >= 4), no orphan key or pending object is left, and the
# next renewal works.
. "$(dirname "$0")/lib.sh"
cli_setup
scep_start
enrol_key Alice
CUR=$CERT_ID
STEPS=(started key_generated request_sent cert_received cert_written old_retired)

# working_pairs: the ids of user certificates whose private key is on the Key.
working_ids() {
    ok --json key list Alice --pin-fd 3 3<<<"$USER_PIN"
    local keys=$OUT
    ok --json cert list Alice
    jq -r --argjson keys "$keys" '.certificates[] | select(.category == "user" and .status == "valid")
        | .id as $i | select([$keys.keys[] | select(.class == "private" and .id == $i)] | length > 0) | .id' <<<"$OUT"
}

# converged ID: exactly one key pair (ID), one user certificate for it, no
# pending objects, no journal.
converged() {
    ok --json key list Alice --pin-fd 3 3<<<"$USER_PIN"
    jeq "$OUT" '[.keys[] | select(.class == "private")] | length' 1 "$2: private keys (no orphans)"
    jeq "$OUT" '[.keys[] | .id] | unique' "[\"$1\"]" "$2: key ids"
    jeq "$OUT" '[.keys[] | select(.label | startswith("ukey-renewal-pending"))] | length' 0 "$2: pending keys"
    ok --json cert list Alice
    jeq "$OUT" '[.certificates[] | select(.category == "user") | .id]' "[\"$1\"]" "$2: user certificates"
    if ls "$T/state/renewal"/*.json >/dev/null 2>&1; then fail "$2: a journal is left"; fi
}

for n in 1 2 3 4 5 6; do
    step "crash after step $n (${STEPS[n - 1]})"
    uk_crash "$n" --json renew Alice --ca "$SCEP_URL" --ca-fingerprint "$SCEP_FP" \
        --challenge-file "$T/challenge" --pin-fd 3 3<<<"$USER_PIN"
    jq -e --arg s "${STEPS[n - 1]}" '.step == $s' "$T/state/renewal"/*.json >/dev/null \
        || fail "after the crash at $n the journal does not stand at ${STEPS[n - 1]}"

    # The Key works right now, half-renewed: every working pair does TLS.
    ids=$(working_ids)
    [[ -n $ids ]] || fail "after the crash at step $n no certificate has its key on the Key"
    for id in $ids; do
        tls_check "$id" Alice "crashed after step $n, pair $id" || fail "TLS with $id after the crash at step $n"
    done

    # The next run converges.
    ok --json renew Alice --resume --pin-fd 3 3<<<"$USER_PIN"
    jeq "$OUT" '.resumed' true "resume after $n"
    if ((n < 4)); then
        jeq "$OUT" '.state' '"rolled_back"' "resume after $n"
        converged "$CUR" "rolled back after $n"
    else
        jeq "$OUT" '.state' '"completed"' "resume after $n"
        NEW=$(jr "$OUT" '.key_id')
        [[ $NEW != "$CUR" ]] || fail "the completed renewal after $n kept the old key"
        converged "$NEW" "completed after $n"
        CUR=$NEW
    fi
    tls_check "$CUR" Alice "converged after step $n" || fail "TLS after converging from step $n"
done

step "a crash, then a plain \`ukey renew\` finishes the journal and renews"
uk_crash key_generated renew Alice --ca "$SCEP_URL" --ca-fingerprint "$SCEP_FP" \
    --challenge-file "$T/challenge" --pin-fd 3 3<<<"$USER_PIN"
ok --json renew Alice --ca "$SCEP_URL" --ca-fingerprint "$SCEP_FP" --challenge-file "$T/challenge" \
    --pin-fd 3 3<<<"$USER_PIN"
jeq "$OUT" '.state' '"completed"' "renew after a crash"
jeq "$OUT" '.resumed' true "renew after a crash"
NEW=$(jr "$OUT" '.key_id')
converged "$NEW" "renew after a crash"
tls_check "$NEW" Alice "renewed after a crash" || fail "TLS after the renewal that followed a crash"

step "a damaged journal is reported, not guessed at"
mkdir -p "$T/state/renewal"
uk_crash cert_written renew Alice --ca "$SCEP_URL" --ca-fingerprint "$SCEP_FP" \
    --challenge-file "$T/challenge" --pin-fd 3 3<<<"$USER_PIN"
j=$(ls "$T/state/renewal"/*.json)
stat -c %a "$j" | grep -qx 600 || fail "the journal is not 0600"
stat -c %a "$T/state/renewal" | grep -qx 700 || fail "the journal folder is not 0700"
cp "$j" "$T/journal.bak"
# ukey doctor finds the unfinished renewal, and says how far it got.
uk --json doctor Alice
expect_rc 18 "doctor after a crash"
jeq "$OUT" '[.findings[] | select(.id == "P8.renewal-unfinished")] | length' 1 "doctor after a crash"
assert_contains "$(jq -r '.findings[] | select(.id == "P8.renewal-unfinished") | .what' <<<"$OUT")" \
    "a renewal of this Key stopped after the step 'cert_written'" "doctor after a crash"
assert_contains "$(jq -r '.findings[] | select(.id == "P8.renewal-unfinished") | .fix' <<<"$OUT")" \
    '`ukey renew --resume' "doctor after a crash"
echo '{"step": "bogus"' >"$j"
uk --json renew Alice --resume --pin-fd 3 3<<<"$USER_PIN"
jerror 1 "damaged journal"
assert_contains "$ERR" "damaged" "damaged journal"
uk --json doctor Alice
expect_rc 18 "doctor with a damaged journal"
assert_contains "$(jq -r '.findings[] | select(.id == "P8.renewal-unfinished") | .what' <<<"$OUT")" \
    "a renewal of this Key left a journal that cannot be read" "doctor with a damaged journal"
# A journal that parses but whose key ID is not hex (found by fuzz.journal):
# a clear error, not undefined behaviour (a sanitizer would fail the test).
jq '.new_id = "not-hex"' "$T/journal.bak" >"$j"
uk --json renew Alice --resume --pin-fd 3 3<<<"$USER_PIN"
jerror 1 "journal with a non-hex new_id"
assert_contains "$ERR" "is not a key ID in hex" "journal with a non-hex new_id"
cp "$T/journal.bak" "$j"
ok --json renew Alice --resume --pin-fd 3 3<<<"$USER_PIN"
jeq "$OUT" '.state' '"completed"' "resume with the journal restored"
converged "$(jr "$OUT" '.key_id')" "after the damaged journal was restored"
uk --json doctor Alice
jeq "$OUT" '[.findings[] | select(.id == "P8.renewal-unfinished")] | length' 0 "doctor after the resume"

step "ukey doctor --fix resumes an interrupted renewal"
uk_crash request_sent renew Alice --ca "$SCEP_URL" --ca-fingerprint "$SCEP_FP" \
    --challenge-file "$T/challenge" --pin-fd 3 3<<<"$USER_PIN"
printf '%s\n' "$USER_PIN" >"$T/pin"
uk --json doctor Alice --fix
jerror 11 "--fix without a terminal or --yes"
uk --json doctor Alice --fix --yes --pin-file "$T/pin"
expect_rc 0 "doctor --fix --yes"
jeq "$OUT" '[.fixes[] | {id, result, exit}]' '[{"id":"P8.renewal-unfinished","result":"done","exit":0}]' "doctor --fix"
jeq "$OUT" '.findings' '[]' "doctor --fix: nothing left"
if ls "$T/state/renewal"/*.json >/dev/null 2>&1; then fail "doctor --fix left the journal"; fi

finish
