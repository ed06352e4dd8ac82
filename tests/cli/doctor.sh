#!/usr/bin/env bash
# ukey doctor: each problem made real (no config, a broken config, a backend
# that does not load, pcscd not reachable for a PC/SC backend, a blank Key, a
# transport PIN, wrong PINs, a locked user PIN and SO PIN, expired, expiring
# and not-yet-valid certificates made by a test CA), each found with its id,
# severity, text and exit code, in text and --json; a healthy Key gives
# "Everything looks fine" and exit 0; docs/doctor.md lists the checks as
# `ukey doctor --list-checks` prints them.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/doctor_lib.sh"
private_p11kit "$@"
cli_setup

new_pins SO U1 U2 WRONG WRONG_SO

# use_conf NAME TEXT: UKEY_CONF becomes $T/NAME.conf holding TEXT (0600).
use_conf() {
    printf '%s' "$2" >"$T/$1.conf"
    chmod 0600 "$T/$1.conf"
    export UKEY_CONF=$T/$1.conf
}

step "nothing set up: no config file gives the first three steps"
(
    export UKEY_CONF=$T/nowhere/ukey.conf
    doctor 18
    w=$(finding setup.no-config problem)
    assert_contains "$w" "there is no $T/nowhere/ukey.conf" "no config"
    assert_contains "$TEXT" "1. install your Key's driver" "step 1"
    assert_contains "$TEXT" "2. name it in $T/nowhere/ukey.conf as a [[backend]]" "step 2"
    assert_contains "$TEXT" "3. plug in the Key and run \`ukey doctor\` again" "step 3"
    jeq "$DOC" '.worst' '"problem"' "no config"
)

step "a config with a typing error"
(
    use_conf bad "$(printf 'state_dir = "%s"\n[[backend]\n' "$T/state")"
    doctor 18
    w=$(finding setup.config-invalid problem)
    assert_contains "$w" "the configuration cannot be used: " "bad config"
    assert_contains "$w" "$T/bad.conf" "bad config names the file"
)

step "a backend whose module does not exist (not optional, then optional)"
(
    use_conf gone "$(cat "$T/ukey.conf"; printf '\n[[backend]]\nname = "vendor"\nmodule = "%s"\n' "$T/no-such-pkcs11.so")"
    doctor 18
    w=$(finding P2.backend-fails problem)
    assert_contains "$w" "the backend 'vendor' ($T/no-such-pkcs11.so) does not work: " "missing module"
    assert_contains "$w" "no application can use any Key through ukey" "missing module"
    no_finding setup.module-fails
    printf '\noptional = true\n' >>"$T/gone.conf"
    doctor 17
    w=$(finding P2.backend-fails warning)
    assert_contains "$w" "it is optional, so its Keys are only left out" "optional module"
    finding P2.not-initialised warning >/dev/null
)

step "pcscd not reachable, for a backend that reads cards through it (OpenSC)"
OPENSC=/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so
if [[ -r $OPENSC ]]; then
    (
        use_conf cards "$(cat "$T/ukey.conf"; printf '\n[[backend]]\nname = "cards"\nmodule = "%s"\npin_counter = "token"\n' "$OPENSC")"
        export PCSCLITE_CSOCK_NAME=$T/no-pcscd.comm
        doctor 18
        w=$(finding P1.pcscd-down problem)
        assert_eq "$w" "the smart-card service pcscd is not running (error 8010001D, SCARD_E_NO_SERVICE), so no Key in a card reader can be seen" "pcscd down"
        no_finding P1.no-reader
    )
    step "a PC/SC-less setup (SoftHSM2 only) does not care about pcscd"
    PCSCLITE_CSOCK_NAME=$T/no-pcscd.comm uk --json doctor
    DOC=$OUT
    jeq "$DOC" '[.findings[].id]' '["P2.not-initialised"]' "SoftHSM2 only, pcscd unreachable"
    no_finding P1.pcscd-down
else
    log "OpenSC not installed: the pcscd check is not tested here"
fi

step "a blank Key"
doctor 17
w=$(finding P2.not-initialised warning)
assert_eq "$w" "this Key is not initialised: it has no PIN and no certificate yet" "blank Key"
assert_contains "$(jr "$DOC" '.findings[0].fix')" '`ukey init`' "blank Key fix"
assert_contains "$TEXT" "WARNING  the Key in slot " "blank Key text"
assert_contains "$TEXT" ": this Key is not initialised" "blank Key text"
jeq "$DOC" '.keys_checked' 1 "blank Key"

step "a transport PIN"
init_key alice "$SO" "$U1" --transport-pin
doctor 17
w=$(finding P5.transport-pin warning)
assert_contains "$w" "the Key still has the transport PIN it was shipped with" "transport PIN"
jeq "$DOC" '.findings[] | select(.id == "P5.transport-pin") | .key' "\"Key 'alice' (serial $SERIAL)\"" "transport PIN key"
assert_contains "$TEXT" "WARNING  Key 'alice' (serial $SERIAL): the Key still has the transport PIN" "text line"
ok pin change alice --pin-fd 3 --new-pin-fd 4 3<<<"$U1" 4<<<"$U2"

step "a healthy Key: everything looks fine"
doctor 0 alice
assert_eq "$TEXT" "Everything looks fine (1 Key checked)." "healthy"
assert_eq "$ERR" "" "healthy: nothing on stderr"
jeq "$DOC" '.findings' '[]' "healthy"
jeq "$DOC" '.worst' null "healthy"
# SoftHSM2's next, blank token beside it is only a note.
doctor 0
finding P2.not-initialised note >/dev/null
assert_contains "$TEXT" "Everything looks fine (2 Keys checked)." "a note is fine"
jeq "$DOC" '.worst' '"note"' "a note is fine"

step "two wrong PINs: tries left"
for _ in 1 2; do uk pin verify alice --pin-fd 3 3<<<"$WRONG"; expect_rc 5 "wrong PIN"; done
doctor 17
w=$(finding P3.pin-tries-low warning)
assert_eq "$w" "a wrong user PIN was entered: 4 of 6 tries are left before the PIN locks" "tries left"
assert_contains "$(jr "$DOC" '.findings[0].fix')" "\`ukey pin verify $SERIAL\`" "tries fix"

step "a locked user PIN"
for _ in 1 2 3 4; do uk pin verify alice --pin-fd 3 3<<<"$WRONG"; done
expect_rc 6 "the sixth wrong PIN locks"
doctor 18
w=$(finding P4.user-pin-locked problem)
assert_contains "$w" "the user PIN is locked after too many wrong tries" "locked"
assert_contains "$(jq -r '.findings[] | select(.id == "P4.user-pin-locked") | .fix' <<<"$DOC")" \
    "unlock it with the SO PIN: \`ukey pin unlock $SERIAL\` sets a new user PIN" "unlock path"
no_finding P3.pin-tries-low
ok pin unlock alice --so-pin-fd 3 --new-pin-fd 4 3<<<"$SO" 4<<<"$U1"
doctor 0 alice

step "a locked SO PIN"
for _ in 1 2 3 4 5 6; do uk pin verify alice --so --pin-fd 3 3<<<"$WRONG_SO"; done
expect_rc 6 "the sixth wrong SO PIN locks"
doctor 17
w=$(finding P4.so-pin-locked warning)
assert_contains "$w" "the SO PIN is locked after too many wrong tries" "SO locked"

step "expired, expiring and not yet valid certificates (made by a test CA)"
soft_cert "Old One" "$T/old.pem" 20200101000000Z 20210101000000Z
soft_cert "Soon" "$T/soon.pem" now 10
soft_cert "Later" "$T/later.pem" "$(date -u -d '+3 days' +%Y%m%d%H%M%SZ)" "$(date -u -d '+400 days' +%Y%m%d%H%M%SZ)"
for c in old soon later; do
    openssl x509 -in "$T/$c.pem" -outform DER -out "$T/$c.der"
done
p11 --login --pin "$U1" --write-object "$T/old.der" --type cert --id 11 --label old >/dev/null
p11 --login --pin "$U1" --write-object "$T/soon.der" --type cert --id 12 --label soon >/dev/null
p11 --login --pin "$U1" --write-object "$T/later.der" --type cert --id 13 --label later >/dev/null
doctor 18
w=$(finding P6.cert-expired problem)
assert_contains "$w" "the certificate 'old' expired on 2021-01-01 (" "expired"
w=$(finding P6.cert-expiring warning)
assert_contains "$w" "the certificate 'soon' expires on $(iso_not_after "$T/soon.pem" | cut -c1-10) (in $(days_left "$T/soon.pem") days)" "expiring"
assert_contains "$(jq -r '.findings[] | select(.id == "P6.cert-expiring") | .fix' <<<"$DOC")" \
    "add a [[renewal.ca]] for its issuer" "no renewal configured"
w=$(finding P7.cert-not-yet-valid problem)
assert_contains "$w" "the certificate 'later' is valid only from " "not yet valid"
assert_contains "$w" ", 3 days from now by this computer's clock; if it was issued just now, this computer's clock is 3 days behind" "not yet valid: how far"
# None of them has its CA on the Key, nor is the test CA installed here.
jeq "$DOC" '[.findings[] | select(.id == "P9.chain-incomplete")] | length' 3 "chain: three certificates"
w=$(jq -r '[.findings[] | select(.id == "P9.chain-incomplete")][0].what' <<<"$DOC")
assert_contains "$w" "was issued by 'CN=ukey test CA,O=ukey tests', whose certificate is neither on the Key nor installed here" "chain"
assert_contains "$TEXT" "[P9.chain-incomplete]" "chain (text)"
# Worst first: problems before warnings.
jeq "$DOC" '[.findings[].severity] | . == (sort_by(if . == "problem" then 0 elif . == "warning" then 1 else 2 end))' true "order"

step "the CA certificate written to the Key completes the chain"
openssl x509 -in "$T/ca/ca.pem" -outform DER -out "$T/ca.der"
p11 --login --pin "$U1" --write-object "$T/ca.der" --type cert --id c0 --label "test CA" >/dev/null
uk --json doctor alice
DOC=$OUT
no_finding P9.chain-incomplete

step "revocation: a CRL served over HTTP on 127.0.0.1 (fresh, stale, revoking), then unreachable"
: "${FILE_SERVER:?FILE_SERVER must name ukey-test-file-server}"
mkdir -m 0700 "$T/www"
"$FILE_SERVER" "$T/www" "$T/www.port" 2>"$T/www.err" &
SERVER=$!
# 30 s bounds a server that never starts; the wait ends when it has.
wait_until 30 test -s "$T/www.port" || fail "the file server did not start"
CRL_URL="http://127.0.0.1:$(cat "$T/www.port")/ca.crl"
printf '[crl_ext]\nbasicConstraints = CA:FALSE\nkeyUsage = critical,digitalSignature\nextendedKeyUsage = clientAuth\ncrlDistributionPoints = URI:%s\n' \
    "$CRL_URL" >"$T/crl.ext"
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/rev.key" \
    -subj "/O=ukey tests/CN=Revoked One" -out "$T/rev.csr" 2>/dev/null || fail "openssl req"
openssl ca -config "$T/ca/ca.cnf" -batch -notext -preserveDN -extfile "$T/crl.ext" -extensions crl_ext \
    -in "$T/rev.csr" -out "$T/rev.pem" -days 30 >"$T/ca/last.log" 2>&1 || { cat "$T/ca/last.log" >&2; fail "issue"; }
openssl x509 -in "$T/rev.pem" -outform DER -out "$T/rev.der"
p11 --login --pin "$U1" --write-object "$T/rev.der" --type cert --id 14 --label revoked >/dev/null
gencrl() { openssl ca -config "$T/ca/ca.cnf" -gencrl -out "$T/www/ca.crl" "$@" >"$T/ca/last.log" 2>&1 \
    || { cat "$T/ca/last.log" >&2; fail "openssl ca -gencrl"; }; }
gencrl -crldays 7
uk --json doctor alice
DOC=$OUT
no_finding P10.revoked
gencrl -crl_lastupdate "$(date -u -d '-3 days' +%Y%m%d%H%M%SZ)" -crl_nextupdate "$(date -u -d '-1 day' +%Y%m%d%H%M%SZ)"
doctor 18 alice
w=$(finding P10.revoked warning)
assert_contains "$w" "the revocation list at $CRL_URL is out of date (its next update was due " "stale CRL"
openssl ca -config "$T/ca/ca.cnf" -revoke "$T/rev.pem" -crl_reason keyCompromise >"$T/ca/last.log" 2>&1 \
    || { cat "$T/ca/last.log" >&2; fail "openssl ca -revoke"; }
gencrl -crldays 7
doctor 18 alice
w=$(finding P10.revoked problem)
assert_eq "$w" "the certificate 'revoked' was revoked by its CA on $(date -u +%Y-%m-%d) (the key was compromised): websites refuse it" "revoked"
kill "$SERVER"; wait "$SERVER" 2>/dev/null || true
doctor 18 alice
w=$(finding P10.revoked warning)
assert_contains "$w" "the revocation list of the certificate 'revoked' cannot be fetched from $CRL_URL (connection refused)" "unreachable CRL"
doctor 18 alice --offline
no_finding P10.revoked

step "with the PIN: certificates without their key, and two that can both log in"
printf '%s\n' "$U1" >"$T/pin"
doctor 18 alice --offline --pin-file "$T/pin"
jeq "$DOC" '[.findings[] | select(.id == "P13.cert-without-key")] | length' 4 "four certificates without a key"
w=$(jq -r '.findings[] | select(.id == "P13.cert-without-key") | .what' <<<"$DOC" | grep "'soon'")
assert_eq "$w" "the certificate 'soon' has no private key on this Key, so it cannot be used to log in or sign" "no key"
no_finding P13.several-client-certs
# Without the PIN, private keys are not looked at.
doctor 18 alice --offline
no_finding P13.cert-without-key
for id in 31 32; do
    ok key generate alice --type ec-p256 --id "$id" --label "login $id" --pin-fd 3 3<<<"$U1"
    ok csr alice --key "$id" --subject "/CN=Login $id" --out "$T/login$id.csr" --pin-fd 3 3<<<"$U1"
    issue_cert "$T/login$id.csr" "$T/login$id.pem" now 100
    ok cert write alice --file "$T/login$id.pem" --label "login $id" --pin-fd 3 3<<<"$U1"
done
doctor 18 alice --offline --pin-file "$T/pin"
w=$(finding P13.several-client-certs warning)
assert_eq "$w" "2 valid certificates on this Key can log in to websites ('login 31', 'login 32'): the browser asks which one, or picks one by itself" "two login certificates"
jeq "$DOC" '[.findings[] | select(.id == "P13.cert-without-key")] | length' 4 "the new ones have their keys"
# The PIN is for the one initialised Key when none is named.
uk --json doctor --offline --pin-file "$T/pin"
expect_rc 18 "a PIN, no Key named"
jeq "$OUT" '[.findings[] | select(.id == "P13.several-client-certs")] | length' 1 "a PIN, no Key named"
uk doctor alice --pin-fd 3 3<<<"$WRONG"
expect_rc 5 "a wrong PIN fails the doctor as any command"

step "a missing intermediate: --fix fetches it from the address the certificate names and writes it to the Key"
# The test CA (on the Key since above) -> an intermediate (nowhere) -> a
# certificate whose caIssuers points at the file server.
printf '[int_ext]\nbasicConstraints = critical,CA:TRUE\nkeyUsage = critical,keyCertSign,cRLSign\n' >"$T/int.ext"
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/int.key" \
    -subj "/O=ukey tests/CN=ukey test intermediate" -out "$T/int.csr" 2>/dev/null || fail "openssl req"
openssl ca -config "$T/ca/ca.cnf" -batch -notext -preserveDN -extfile "$T/int.ext" -extensions int_ext \
    -in "$T/int.csr" -out "$T/int.pem" -days 30 >"$T/ca/last.log" 2>&1 || { cat "$T/ca/last.log" >&2; fail "issue"; }
mkdir -p "$T/www2"
chmod 0700 "$T/www2"
"$FILE_SERVER" "$T/www2" "$T/www2.port" 2>"$T/www2.err" &
SERVER=$!
# 30 s bounds a server that never starts; the wait ends when it has.
wait_until 30 test -s "$T/www2.port" || fail "the file server did not start"
AIA_URL="http://127.0.0.1:$(cat "$T/www2.port")/int.der"
printf '[leaf]\nbasicConstraints = CA:FALSE\nauthorityInfoAccess = caIssuers;URI:%s\n' "$AIA_URL" >"$T/leaf.ext"
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/leaf.key" \
    -subj "/O=ukey tests/CN=Leaf" -out "$T/leaf.csr" 2>/dev/null || fail "openssl req"
openssl x509 -req -in "$T/leaf.csr" -CA "$T/int.pem" -CAkey "$T/int.key" -set_serial 77 -days 30 \
    -extfile "$T/leaf.ext" -extensions leaf -outform DER -out "$T/leaf.der" 2>/dev/null || fail "sign the leaf"
p11 --login --pin "$U1" --write-object "$T/leaf.der" --type cert --id 15 --label leaf >/dev/null
leaf_p9() { jq -c '[.findings[] | select(.id == "P9.chain-incomplete" and (.what | contains("'"'"'leaf'"'"'")))]' <<<"$OUT"; }
# Without --fix nothing is fetched: the finding says where the certificate is.
uk --json doctor alice
jeq "$(leaf_p9)" 'length' 1 "the leaf's chain"
assert_contains "$(jr "$(leaf_p9)" '.[0].fix')" "the certificate says it is at $AIA_URL" "where the intermediate is"
jeq "$(leaf_p9)" '.[0].remedy' null "no remedy without --fix"
[[ ! -e $T/state/doctor ]] || fail "the doctor wrote something without --fix"
# A server that answers with another CA's certificate: nothing is offered.
openssl x509 -in "$T/ca/ca.pem" -outform DER -out "$T/www2/int.der"
uk --json doctor alice --fix --yes --pin-file "$T/pin"
assert_contains "$(jr "$(leaf_p9)" '.[0].fix')" "could not be fetched (the certificate there is not the CA certificate that signed it)" "a wrong certificate"
jeq "$(leaf_p9)" '.[0].remedy' null "no remedy for a wrong certificate"
# The right one: written to the Key, and the chain is complete.
openssl x509 -in "$T/int.pem" -outform DER -out "$T/www2/int.der"
uk --json doctor alice --fix --yes --pin-file "$T/pin"
jeq "$(leaf_p9)" 'length' 0 "after --fix, the leaf's chain"
jeq "$OUT" '[.fixes[] | select(.id == "P9.chain-incomplete")] | length' 1 "the fix ran"
ok --json cert list alice
jeq "$OUT" '[.certificates[] | select(.subject == "CN=ukey test intermediate,O=ukey tests") | .category] | .[0]' '"authority"' \
    "the intermediate is on the Key"
kill "$SERVER"; wait "$SERVER" 2>/dev/null || true

step "a browser's NSS database (as Chromium keeps it) that does not load ukey; --fix adds the module"
need certutil modutil
mkdir -p "$T/.pki/nssdb"
certutil -N -d "sql:$T/.pki/nssdb" --empty-password || fail "certutil -N"
doctor 18 alice --offline
w=$(finding P12.browser-module-missing warning)
assert_eq "$w" "Chromium (~/.pki/nssdb) does not load ukey's module, so websites there never see the Key's certificates" "browser"
assert_contains "$(jq -r '.findings[] | select(.id == "P12.browser-module-missing") | .fix' <<<"$DOC")" \
    "modutil -dbdir sql:$T/.pki/nssdb -add ukey -libfile $UKEY_MODULE" "browser fix"
# modutil, which --fix runs, loads ukey's module.
uk_runs_nss_tools
uk --json doctor alice --offline --fix --yes
UK_AS=()
expect_rc 18 "doctor --fix (the certificates' problems stay)"
jeq "$OUT" '[.fixes[] | {id, result}]' '[{"id":"P12.browser-module-missing","result":"done"}]' "browser --fix"
jeq "$OUT" '[.findings[] | select(.id == "P12.browser-module-missing")] | length' 0 "browser fixed"
ukc modutil -list -dbdir "sql:$T/.pki/nssdb" 2>/dev/null | grep -q "library name: $UKEY_MODULE" \
    || fail "modutil does not list ukey's module in the NSS database"

step "the browser loads the backend (SoftHSM2) itself: P11"
# Both in one NSS process would be SoftHSM2 initialised twice (NSS refuses
# the second), so the backend replaces ukey's module for this step.
nss_db=(-dbdir "sql:$T/.pki/nssdb")
ukc modutil -force "${nss_db[@]}" -delete ukey >/dev/null 2>&1 || fail "modutil -delete ukey"
ukc modutil -force "${nss_db[@]}" -add "vendor driver" -libfile "$SOFTHSM_MODULE" >"$T/modutil.out" 2>&1 \
    || fail "modutil -add the backend: $(<"$T/modutil.out")"
doctor 18 alice --offline
w=$(finding P11.browser-loads-backend warning)
assert_eq "$w" "Chromium (~/.pki/nssdb) loads the backend 'softhsm' ($SOFTHSM_MODULE) itself, so it shows its Keys a second time, straight from the driver and without ukey's PIN lockout" "browser loads the backend"
assert_contains "$(fix_of P11.browser-loads-backend)" "modutil -dbdir sql:$T/.pki/nssdb -delete NAME" "how to remove it"
ukc modutil -force "${nss_db[@]}" -delete "vendor driver" >/dev/null 2>&1 || fail "modutil -delete the backend"
ukc modutil -force "${nss_db[@]}" -add ukey -libfile "$UKEY_MODULE" >"$T/modutil.out" 2>&1 \
    || fail "modutil -add ukey: $(<"$T/modutil.out")"
doctor 18 alice --offline
no_finding P11.browser-loads-backend
no_finding P12.browser-module-missing

step "one Key asked about by name; an unknown one is exit 3"
uk --json doctor alice
expect_rc 18 "doctor alice"
jeq "$OUT" '.keys_checked' 1 "doctor alice"
uk doctor nosuchkey
expect_rc 3 "doctor nosuchkey"

step "docs/doctor.md lists the checks as the program does"
ok doctor --list-checks
table=$(sed -n '/^| id | problem/,/^$/p' "$CLI_DIR/../../docs/doctor.md" | sed '/^$/d')
assert_eq "$table" "$OUT" "docs/doctor.md's table (regenerate: ukey doctor --list-checks)"

check_no_pin_leaks
finish
