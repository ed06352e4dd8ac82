#!/usr/bin/env bash
# Must-show 1: enrol a SoftHSM2 Key against a real SCEP CA (Debian's
# scepserver, -allowrenew 0), then renew it: the new certificate's key was
# made on the Key, its CKA_ID is the key's, TLS client auth through libp11
# works with it, and the old certificate and key are gone. Then --same-key,
# --keep-old with `ukey cert superseded list|clean`, and the JSON schema.
. "$(dirname "$0")/lib.sh"
cli_setup
scep_start

step "enrol: a new key pair on the Key, the certificate and CA written"
enrol_key Alice
jkeys "$OUT" '.' "operation state resumed key_id certificate old old_action ca steps" "enroll"
jeq "$OUT" '.operation' '"enroll"' "enroll"
jeq "$OUT" '.steps' '["started","key_generated","request_sent","cert_received","cert_written","old_retired"]' "enroll"
jeq "$OUT" '.certificate.subject' '"CN=Alice,O=ukey tests"' "enroll"
jeq "$OUT" '.certificate.id' "\"$CERT_ID\"" "enroll"
OLD_ID=$CERT_ID
OLD_SERIAL=$(jr "$OUT" '.certificate.serial')
ok --json cert list Alice
jeq "$OUT" '[.certificates[] | select(.category == "user")] | length' 1 "certificates after enrol"
jeq "$OUT" '[.certificates[] | select(.category == "authority")] | length' 1 "the CA certificate is on the Key"
jeq "$OUT" '.certificates[] | select(.category == "user") | .has_key' true "the certificate has its key"
soft tls_check "$OLD_ID" Alice "after enrol"
ls "$T/state/renewal"/*.json >/dev/null 2>&1 && fail "a journal is left after the enrolment"

step "renew (default: new key pair, RenewalReq signed with the old key)"
uk --json renew Alice --ca "$SCEP_URL" --ca-fingerprint "$SCEP_FP" --challenge-file "$T/challenge" \
    --pin-fd 3 3<<<"$USER_PIN"
expect_rc 0 "ukey renew"
json_ok "$OUT" "ukey --json renew"
jeq "$OUT" '.operation' '"renew"' "renew"
jeq "$OUT" '.state' '"completed"' "renew"
jeq "$OUT" '.old.id' "\"$OLD_ID\"" "renew"
jeq "$OUT" '.old_action' '"deleted"' "renew"
NEW_ID=$(jr "$OUT" '.key_id')
[[ $NEW_ID != "$OLD_ID" ]] || fail "the renewal kept the old key id $OLD_ID"
jeq "$OUT" '.certificate.id' "\"$NEW_ID\"" "the new certificate's CKA_ID is the new key's"
[[ $(jr "$OUT" '.certificate.serial') != "$OLD_SERIAL" ]] || fail "the certificate was not renewed"
grep -q "RenewalReq\|Revoking certificate with serial $OLD_SERIAL" "$T/scep/server.log" \
    || log "note: scepserver did not log the renewal"

step "the new key was generated on the Key (not extractable, sensitive), the old one is gone"
ok --json key list Alice --pin-fd 3 3<<<"$USER_PIN"
jeq "$OUT" '[.keys[] | select(.class == "private")] | length' 1 "private keys after renewal"
jeq "$OUT" '[.keys[] | select(.class == "private")][0].id' "\"$NEW_ID\"" "the private key"
jeq "$OUT" '[.keys[] | select(.id == "'"$OLD_ID"'")] | length' 0 "old key objects"
out=$(p11 --login --pin "$USER_PIN" --list-objects --type privkey 2>&1)
pin "$USER_PIN"
assert_contains "$out" "never extractable" "pkcs11-tool: the new key"
assert_contains "$out" "sensitive" "pkcs11-tool: the new key"
ok --json cert list Alice
jeq "$OUT" '[.certificates[] | select(.category == "user")] | length' 1 "user certificates after renewal"
jeq "$OUT" '[.certificates[] | select(.category == "user")][0].id' "\"$NEW_ID\"" "the certificate left"
# The certificate's public key is the key's on the Key.
cert_pem "$NEW_ID" "$T/new.pem"
p11 --read-object --type pubkey --id "$NEW_ID" -o "$T/new.pub.der" >/dev/null
[[ "$(openssl x509 -in "$T/new.pem" -noout -pubkey)" == "$(openssl pkey -pubin -inform DER -in "$T/new.pub.der")" ]] \
    || fail "the new certificate's public key is not the key on the Key"
openssl verify -CAfile "$SCEP_CA" "$T/new.pem" >/dev/null || fail "the new certificate does not chain to the CA"
tls_check "$NEW_ID" Alice "after renew" || fail "TLS client auth with the renewed certificate failed"
ls "$T/state/renewal"/*.json >/dev/null 2>&1 && fail "a journal is left after the renewal"

step "renew --same-key: the key stays, only the certificate changes"
uk --json renew Alice --same-key --ca "$SCEP_URL" --ca-fingerprint "$SCEP_FP" --challenge-file "$T/challenge" \
    --pin-fd 3 3<<<"$USER_PIN"
expect_rc 0 "ukey renew --same-key"
jeq "$OUT" '.key_id' "\"$NEW_ID\"" "same key"
jeq "$OUT" '.old.id' "\"$NEW_ID\"" "same key"
ok --json cert list Alice
jeq "$OUT" '[.certificates[] | select(.category == "user")] | length' 1 "user certificates after --same-key"
soft tls_check "$NEW_ID" Alice "after --same-key"

step "renew --keep-old, then cert superseded list and clean"
uk --json renew Alice --keep-old --ca "$SCEP_URL" --ca-fingerprint "$SCEP_FP" --challenge-file "$T/challenge" \
    --pin-fd 3 3<<<"$USER_PIN"
expect_rc 0 "ukey renew --keep-old"
jeq "$OUT" '.old_action' '"kept_superseded"' "keep-old"
KEPT_ID=$(jr "$OUT" '.key_id')
ok --json cert superseded list Alice
jeq "$OUT" '.superseded | length' 1 "superseded list"
jeq "$OUT" '.superseded[0].id' "\"$NEW_ID\"" "superseded list"
jmatch "$OUT" '.superseded[0].label' '^superseded [0-9]{4}-[0-9]{2}-[0-9]{2}: Alice$' "superseded label"
# A second renewal sees only the current certificate (the superseded one is not a candidate).
soft tls_check "$KEPT_ID" Alice "after --keep-old"
ok --json cert superseded clean Alice --yes --pin-fd 3 3<<<"$USER_PIN"
jeq "$OUT" '.deleted | length' 1 "superseded clean"
jeq "$OUT" '.keys_deleted' 2 "superseded clean: the old key pair"
ok --json cert superseded list Alice
jeq "$OUT" '.superseded' '[]' "superseded list after clean"
ok --json key list Alice --pin-fd 3 3<<<"$USER_PIN"
jeq "$OUT" '[.keys[] | .id] | unique' "[\"$KEPT_ID\"]" "keys after clean"

step "renew --resume with nothing to resume"
ok --json renew Alice --resume --pin-fd 3 3<<<"$USER_PIN"
jeq "$OUT" '.state' '"nothing_to_do"' "resume"

finish
