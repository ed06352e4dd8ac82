#!/usr/bin/env bash
# ukey doctor, the checks that need a server or a logged-in Key, each made
# real in a private network namespace (tests/renewal/lib.sh: a scepserver CA
# enrols the Key):
# - P13.key-without-cert: a key generated for a request whose certificate
#   never came (not the new key of a renewal stopped midway, which its
#   journal names);
# - --url: real TLS servers on 127.0.0.1 (openssl s_server) that ask for
#   certificates from another CA, from the Key's CA, from none, or are gone;
#   a CA name with escape sequences is shown escaped;
# - P12 auto-select: a real Chromium policy file (a tmpfs over /etc/opt in
#   the private mount namespace) naming another CA, then the Key's;
# - P10 over OCSP: an `openssl ocsp` responder for a test CA.
. "$(dirname "$0")/../renewal/lib.sh"
TEST_NAME=cli.doctor_url
. "$(dirname "$0")/doctor_lib.sh"
need openssl
cli_setup
scep_start
enrol_key alice
printf '%s\n' "$USER_PIN" >"$T/pin"
chmod 0600 "$T/pin"

step "an enrolled Key: its key has its certificate"
uk --json doctor alice --offline --pin-file "$T/pin"
DOC=$OUT
json_ok "$DOC" "doctor"
no_finding P13.key-without-cert
BASE_RC=$RC

step "a key generated for a request whose certificate never came"
ok key generate alice --type ec-p256 --id 41 --label "request 41" --pin-fd 3 3<<<"$USER_PIN"
doctor 17 alice --offline --pin-file "$T/pin"
w=$(finding P13.key-without-cert warning)
assert_eq "$w" "the private key 'request 41' (id 41) has no certificate on this Key, so it cannot be used to log in until its certificate is written" "key without cert"
assert_contains "$(fix_of P13.key-without-cert)" "\`ukey cert write --file CERT.pem $SERIAL\`" "write its certificate"
assert_contains "$(fix_of P13.key-without-cert)" "\`ukey key delete --id 41 $SERIAL\`" "or delete it"
# Without the PIN, private keys are not looked at.
uk --json doctor alice --offline
DOC=$OUT
no_finding P13.key-without-cert

step "a renewal stopped after making its new key: that key is the renewal's, not abandoned"
uk_crash key_generated renew alice --ca "$SCEP_URL" --ca-fingerprint "$SCEP_FP" \
    --challenge-file "$T/challenge" --pin-fd 3 3<<<"$USER_PIN"
NEW_ID=$(jq -r '.new_id' "$T/state/renewal"/*.json)
[[ -n $NEW_ID && $NEW_ID != null && $NEW_ID != 41 ]] || fail "the journal names no new key"
ok --json key list alice --pin-fd 3 3<<<"$USER_PIN"
jeq "$OUT" "[.keys[] | select(.class == \"private\" and .id == \"$NEW_ID\")] | length" 1 "the renewal's new key is on the Key"
doctor 18 alice --offline --pin-file "$T/pin"
finding P8.renewal-unfinished problem >/dev/null
w=$(finding P13.key-without-cert warning)
assert_contains "$w" "(id 41)" "only the abandoned key"
ok renew alice --resume --pin-fd 3 3<<<"$USER_PIN"

step "the abandoned key deleted: nothing to say"
ok key delete alice --id 41 --yes --pin-fd 3 3<<<"$USER_PIN"
uk --json doctor alice --offline --pin-file "$T/pin"
DOC=$OUT
no_finding P13.key-without-cert
expect_rc "$BASE_RC" "as before the key was made"

# --- --url ------------------------------------------------------------------

# tls_server NAME [s_server options...]: an s_server -www (it does not read
# stdin, which would end it) on 127.0.0.1 with a
# self-signed certificate; sets SRV_PID and SRV_URL.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/srv.key" -out "$T/srv.pem" \
    -days 2 -subj "/CN=127.0.0.1" 2>/dev/null || fail "server certificate"
SRV_PID=
tls_server() {
    local name=$1; shift
    openssl s_server -www -accept 127.0.0.1:0 -cert "$T/srv.pem" -key "$T/srv.key" "$@" \
        </dev/null >"$T/$name.out" 2>&1 &
    SRV_PID=$!
    SRV_URL="https://127.0.0.1:$(s_server_port "$SRV_PID" "$T/$name.out")/login"
}
tls_server_stop() { kill "$SRV_PID" 2>/dev/null || true; wait "$SRV_PID" 2>/dev/null || true; }

step "--url: a site that asks for certificates from another CA"
make_ca
tls_server other -Verify 1 -CAfile "$T/ca/ca.pem"
doctor 18 alice --url "$SRV_URL" --pin-file "$T/pin"
w=$(finding P13.server-expects-other-ca problem)
issuer=$(openssl x509 -in "$SCEP_CA" -noout -subject -nameopt RFC2253 | sed 's/^subject=//')
assert_eq "$w" "the site $SRV_URL asks for a certificate from 'CN=ukey test CA,O=ukey tests'; this Key's certificate 'alice' is from '$issuer', so the browser offers none of them there" "other CA"
no_finding P13.url-not-checked
# Without the PIN too: certificates are public.
uk --json doctor alice --url "$SRV_URL"
DOC=$OUT
finding_n=$(jq '[.findings[] | select(.id == "P13.server-expects-other-ca")] | length' <<<"$DOC")
assert_eq "$finding_n" 1 "no PIN needed"
tls_server_stop

step "--url: a site that asks for certificates from the Key's CA"
tls_server same -Verify 1 -CAfile "$SCEP_CA"
uk --json doctor alice --url "$SRV_URL"
DOC=$OUT
json_ok "$DOC" "doctor --url"
no_finding P13.server-expects-other-ca
no_finding P13.url-not-checked
tls_server_stop

step "--url: one of several CAs named is the Key's"
cat "$T/ca/ca.pem" "$SCEP_CA" >"$T/both.pem"
tls_server both -Verify 1 -CAfile "$T/both.pem"
uk --json doctor alice --url "$SRV_URL"
DOC=$OUT
no_finding P13.server-expects-other-ca
tls_server_stop

step "--url: Chromium's AutoSelectCertificateForUrls, from a real policy file"
# The policy folder is fixed (/etc/opt/chrome/policies/managed): in this
# test's private mount namespace a tmpfs over /etc/opt holds it, so the
# machine's /etc is never touched.
if mount -t tmpfs -o mode=0755 tmpfs /etc/opt 2>/dev/null; then
    mkdir -p /etc/opt/chrome/policies/managed
    # scepserver's CA has no CN: its O is what a policy can name.
    scep_o=$(openssl x509 -in "$SCEP_CA" -noout -subject -nameopt RFC2253 | sed 's/^subject=//')
    [[ $scep_o == *O=* ]] || fail "the SCEP CA's name has no O: $scep_o"
    scep_o=${scep_o#*O=}; scep_o=${scep_o%%,*}
    tls_server same2 -Verify 1 -CAfile "$SCEP_CA"
    origin=${SRV_URL%/login}
    # policy O: a rule that picks certificates from the CA of organisation O.
    policy() {
        jq -n --arg rule "$(jq -cn --arg p "$origin" --arg o "$1" '{pattern: $p, filter: {ISSUER: {O: $o}}}')" \
            '{AutoSelectCertificateForUrls: [$rule]}' >/etc/opt/chrome/policies/managed/ukey-test.json
    }
    policy "Some Other CA"
    doctor 17 alice --url "$SRV_URL"
    w=$(finding P12.auto-select-other-cert warning)
    assert_contains "$w" "Chromium's policy /etc/opt/chrome/policies/managed/ukey-test.json picks the certificate for $SRV_URL by itself" "auto-select: another issuer"
    assert_contains "$w" "none of this Key's certificates has that" "auto-select: another issuer"
    policy "$scep_o"
    uk --json doctor alice --url "$SRV_URL"
    DOC=$OUT
    no_finding P12.auto-select-other-cert
    tls_server_stop
    umount /etc/opt
else
    log "no tmpfs over /etc/opt in this namespace: the policy file step is skipped (unit.DoctorAutoSelect tests the matching)"
fi

step "--url: a site that asks for no certificate, then one that is gone"
tls_server plain
doctor "$BASE_RC" alice --url "$SRV_URL"
w=$(finding P13.url-not-checked note)
assert_eq "$w" "the site $SRV_URL did not ask for a certificate when connecting, so which certificates it accepts is not known" "no request"
no_finding P13.server-expects-other-ca
tls_server_stop
doctor 17 alice --url "$SRV_URL"
w=$(finding P13.url-not-checked warning)
assert_eq "$w" "the site $SRV_URL could not be asked which certificates it accepts (connection refused)" "gone"

step "--url: a CA name with escape sequences is shown escaped"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/evil.key" -out "$T/evil.pem" \
    -days 2 -utf8 -subj "/CN=Evil$(printf '\033')[2J CA$(printf '\342\200\256')x" 2>/dev/null || fail "evil CA"
tls_server evil -Verify 1 -CAfile "$T/evil.pem"
uk doctor alice --url "$SRV_URL"
expect_rc 18 "evil CA"
assert_contains "$OUT" "[P13.server-expects-other-ca]" "evil CA"
assert_clean_bytes "$T/uk.out" "doctor --url (evil CA)" "reached the terminal"
tls_server_stop

step "--url takes https:// only, and not with --offline"
uk doctor alice --url "http://127.0.0.1:1/"
expect_rc 2 "http URL"
uk doctor alice --url "https://127.0.0.1:1/" --offline
expect_rc 2 "--url --offline"

# --- P10 over OCSP -------------------------------------------------------------

step "OCSP: a responder for the test CA answers good, revoked, unknown; then it is gone"
: "${FILE_SERVER:?FILE_SERVER must name ukey-test-file-server}"
OCSP_PORT=$(free_port)
OCSP_URL="http://127.0.0.1:$OCSP_PORT"
OCSP_PID=
ocsp_start() {
    : >"$T/ocsp.log"
    openssl ocsp -index "$T/ca/index.txt" -port "$OCSP_PORT" -rsigner "$T/ca/ca.pem" -rkey "$T/ca/ca.key" \
        -CA "$T/ca/ca.pem" -nmin 10 >>"$T/ocsp.log" 2>&1 &
    OCSP_PID=$!
    # Its log, not a probe connection: it serves one connection at a time
    # and would wait for a request on the probe.
    # 30 s bounds a server that never starts; the wait ends when it has.
    wait_until 30 grep -q "waiting for OCSP client connections" "$T/ocsp.log" \
        || { cat "$T/ocsp.log" >&2; fail "openssl ocsp did not start"; }
}
ocsp_stop() { kill "$OCSP_PID" 2>/dev/null || true; wait "$OCSP_PID" 2>/dev/null || true; }
# ocsp_cert NAME ID [EXTRA_EXT]: a certificate of the test CA naming the
# responder (and EXTRA_EXT), written to the Key with id ID, label NAME.
ocsp_cert() {
    printf '[ext]\nbasicConstraints = CA:FALSE\nkeyUsage = critical,digitalSignature\nextendedKeyUsage = clientAuth\nauthorityInfoAccess = OCSP;URI:%s\n%s\n' \
        "$OCSP_URL" "${3:-}" >"$T/$1.ext"
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/$1.key" \
        -subj "/O=ukey tests/CN=$1" -out "$T/$1.csr" 2>/dev/null || fail "openssl req"
    openssl ca -config "$T/ca/ca.cnf" -batch -notext -preserveDN -extfile "$T/$1.ext" -extensions ext \
        -in "$T/$1.csr" -out "$T/$1.pem" -days 30 >"$T/ca/last.log" 2>&1 || { cat "$T/ca/last.log" >&2; fail "issue $1"; }
    openssl x509 -in "$T/$1.pem" -outform DER -out "$T/$1.der"
    p11 --login --pin "$USER_PIN" --write-object "$T/$1.der" --type cert --id "$2" --label "$1" >/dev/null
}
# revocations NAME: the P10.revoked findings about certificate NAME.
revocations() { jq -c --arg n "'$1'" '[.findings[] | select(.id == "P10.revoked" and (.what | contains($n)))]' <<<"$DOC"; }
openssl x509 -in "$T/ca/ca.pem" -outform DER -out "$T/ca.der"
p11 --login --pin "$USER_PIN" --write-object "$T/ca.der" --type cert --id c0 --label "test CA" >/dev/null
ocsp_cert good 51
ocsp_start
uk --json doctor alice
DOC=$OUT
jeq "$(revocations good)" 'length' 0 "good"

step "OCSP: revoked"
ocsp_cert gone 52
openssl ca -config "$T/ca/ca.cnf" -revoke "$T/gone.pem" -crl_reason keyCompromise >"$T/ca/last.log" 2>&1 \
    || { cat "$T/ca/last.log" >&2; fail "openssl ca -revoke"; }
ocsp_stop; ocsp_start
doctor 18 alice
jeq "$(revocations good)" 'length' 0 "good, beside a revoked one"
jeq "$(revocations gone)" 'length' 1 "revoked"
jeq "$(revocations gone)" '.[0].severity' '"problem"' "revoked"
assert_eq "$(jr "$(revocations gone)" '.[0].what')" "the certificate 'gone' was revoked by its CA on $(date -u +%Y-%m-%d) (the key was compromised), says its OCSP responder $OCSP_URL: websites refuse it" "revoked (OCSP)"
assert_contains "$TEXT" "says its OCSP responder $OCSP_URL" "revoked (text)"

step "OCSP: a certificate the responder does not know"
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/stray.key" \
    -subj "/O=ukey tests/CN=stray" -out "$T/stray.csr" 2>/dev/null || fail "openssl req"
# Signed outside `openssl ca`: not in the responder's index.
openssl x509 -req -in "$T/stray.csr" -CA "$T/ca/ca.pem" -CAkey "$T/ca/ca.key" -set_serial 777 -days 30 \
    -extfile "$T/good.ext" -extensions ext -out "$T/stray.pem" 2>/dev/null || fail "stray certificate"
openssl x509 -in "$T/stray.pem" -outform DER -out "$T/stray.der"
p11 --login --pin "$USER_PIN" --write-object "$T/stray.der" --type cert --id 53 --label stray >/dev/null
uk --json doctor alice
DOC=$OUT
jeq "$(revocations stray)" '.[0].severity' '"warning"' "unknown"
assert_eq "$(jr "$(revocations stray)" '.[0].what')" "the OCSP responder $OCSP_URL does not know the certificate 'stray' (it answers 'unknown'): websites that ask it may refuse the certificate" "unknown"

step "OCSP and a CRL both say revoked: said once"
mkdir -m 0700 "$T/www"
"$FILE_SERVER" "$T/www" "$T/www.port" 2>"$T/www.err" &
FILE_PID=$!
# 30 s bounds a server that never starts; the wait ends when it has.
wait_until 30 test -s "$T/www.port" || fail "the file server did not start"
ocsp_cert both 54 "crlDistributionPoints = URI:http://127.0.0.1:$(cat "$T/www.port")/ca.crl"
openssl ca -config "$T/ca/ca.cnf" -revoke "$T/both.pem" -crl_reason superseded >"$T/ca/last.log" 2>&1 \
    || { cat "$T/ca/last.log" >&2; fail "openssl ca -revoke"; }
openssl ca -config "$T/ca/ca.cnf" -gencrl -crldays 7 -out "$T/www/ca.crl" >"$T/ca/last.log" 2>&1 \
    || { cat "$T/ca/last.log" >&2; fail "openssl ca -gencrl"; }
ocsp_stop; ocsp_start
uk --json doctor alice
DOC=$OUT
jeq "$(revocations both)" 'length' 1 "one revocation"
assert_eq "$(jr "$(revocations both)" '.[0].what')" "the certificate 'both' was revoked by its CA on $(date -u +%Y-%m-%d) (it was replaced by a new certificate): websites refuse it" "the CRL's"

step "OCSP: the responder is gone"
ocsp_stop
uk --json doctor alice
DOC=$OUT
assert_eq "$(jr "$(revocations good)" '.[0].what')" "the OCSP responder of the certificate 'good' at $OCSP_URL cannot be asked (connection refused): websites that ask it may refuse the certificate" "unreachable"
uk --json doctor alice --offline
DOC=$OUT
no_finding P10.revoked

finish
