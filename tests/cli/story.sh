#!/usr/bin/env bash
# The whole story of a Key, with ukey only: init -> key generate (RSA-2048,
# EC P-256) -> csr -> a test CA (openssl) issues the certificate -> cert write
# -> cert list / show -> cert export (identical to what the CA issued) -> TLS
# 1.3 client authentication with the key on the Key (OpenSSL + libp11) ->
# a certificate for no key on the Key is refused -> renewal replaces the old
# certificate -> cert delete / key delete. Every --json field is checked.
. "$(dirname "$0")/lib.sh"
need openssl pkcs11-tool
[[ -r $ENGINE_SO ]] || skip "libp11 engine $ENGINE_SO not installed (libengine-pkcs11-openssl)"
cli_setup

new_pins SO U
EC_SUBJECT="CN=ukey story ec,O=ukey tests"   # RFC 2253 of /O=ukey tests/CN=ukey story ec
KEY_OBJ_FIELDS="class id label type bits curve has_certificate"
CERT_FIELDS="label id subject issuer serial not_before not_after days_left status category has_key"
DETAIL_FIELDS="$CERT_FIELDS key_usage ext_key_usage subject_alt_names crl_distribution_points fingerprints signature_algorithm public_key subject_key_id is_ca self_signed key_id file"

ossl() { env -u OPENSSL_CONF openssl "$@"; }
# pubkey_on_key ID OUT_PEM: the public key object with that id, read with
# pkcs11-tool (not ukey), as PEM.
pubkey_on_key() {
    p11 --token-label alice --read-object --type pubkey --id "$1" -o "$T/pub.der" >/dev/null
    ossl pkey -pubin -inform DER -in "$T/pub.der" -out "$2"
}

step "init"
init_key alice "$SO" "$U"

# generate TYPE LABEL KIND BITS CURVE: ukey key generate, checked; sets ID.
generate() {
    local type=$1 label=$2 kind=$3 bits=$4 curve=$5 j
    uk --json key generate alice --type "$type" --label "$label" --pin-fd 3 3<<<"$U"
    expect_rc 0 "key generate --type $type"
    json_ok "$OUT" "key generate --json"
    jkeys "$OUT" '.' "generated type id label id_source keys public_key_pem" "key generate --json"
    jeq "$OUT" '.generated' true "key generate"
    jeq "$OUT" '.type' "\"$type\"" "key generate"
    jeq "$OUT" '.label' "\"$label\"" "key generate"
    jeq "$OUT" '.id_source' '"public_key"' "key generate"
    jmatch "$OUT" '.id' '^[0-9a-f]{40}$' "key generate (SHA-1 of the public key)"
    ID=$(jr "$OUT" .id)
    jeq "$OUT" '.keys | length' 2 "key generate"
    jeq "$OUT" '[.keys[].class] | sort' '["private","public"]' "key generate"
    for i in 0 1; do
        j=$(jv "$OUT" ".keys[$i]")
        jkeys "$j" '.' "$KEY_OBJ_FIELDS" "key generate .keys[$i]"
        jeq "$j" '.id' "\"$ID\"" "key generate .keys[$i]"
        jeq "$j" '.label' "\"$label\"" "key generate .keys[$i]"
        jeq "$j" '.type' "\"$kind\"" "key generate .keys[$i]"
        jeq "$j" '.bits' "$bits" "key generate .keys[$i]"
        jeq "$j" '.curve' "$curve" "key generate .keys[$i]"
        jeq "$j" '.has_certificate' false "key generate .keys[$i]"
    done
    # The public key printed is the one on the Key.
    jq -j .public_key_pem <<<"$OUT" >"$T/$label.gen.pub.pem"
    pubkey_on_key "$ID" "$T/$label.onkey.pub.pem"
    cmp -s "$T/$label.gen.pub.pem" "$T/$label.onkey.pub.pem" || fail "public_key_pem differs from the public key on the Key"
}

step "key generate rsa2048 and ec-p256"
generate rsa2048 rsa1 rsa 2048 null
RSA_ID=$ID
out=$(ossl pkey -pubin -in "$T/rsa1.gen.pub.pem" -noout -text)
assert_contains "$out" "Public-Key: (2048 bit)" "RSA public key"
ok key generate alice --type ec-p256 --label ec1 --pin-fd 3 3<<<"$U"
assert_matches "$OUT" "^Generated an EC P-256 key pair on Key 'alice': id [0-9a-f]{40}, label 'ec1'\$" "key generate (text)"
EC_ID=$(sed -n 's/.*: id \([0-9a-f]*\),.*/\1/p' <<<"$OUT" | head -n1)
assert_contains "$OUT" "Next: \`ukey csr --key $EC_ID --subject /CN=...\`" "key generate (text)"
pubkey_on_key "$EC_ID" "$T/ec1.onkey.pub.pem"
assert_contains "$(ossl pkey -pubin -in "$T/ec1.onkey.pub.pem" -noout -text)" "NIST CURVE: P-256" "EC public key"
# --id given.
uk --json key generate alice --type ec-p256 --label spare --id 0A:0b --pin-fd 3 3<<<"$U"
expect_rc 0 "key generate --id"
jeq "$OUT" '[.id, .id_source]' '["0a0b","option"]' "key generate --id"
uk --json key generate alice --type ec-p256 --id 0a0b --pin-fd 3 3<<<"$U"
jerror 12 "key generate with an id already on the Key"
assert_contains "$ERR" "a key with the id 0a0b is already on the Key" "duplicate id"
uk key generate alice --type ec-p256 --id xyz --pin-fd 3 3<<<"$U"
expect_rc 2 "key generate --id xyz"
pin "Wrong-story-1"
uk --json key generate alice --type ec-p256 --pin-fd 3 3<<<"Wrong-story-1"
jerror 5 "key generate with a wrong PIN"
assert_contains "$ERR" "wrong PIN: 5 tries left" "key generate with a wrong PIN"
ok pin verify alice --pin-fd 3 3<<<"$U"

step "key list"
uk key list alice
expect_rc 2 "key list without a PIN source or terminal"
ok --json key list alice --pin-fd 3 3<<<"$U"
jkeys "$OUT" '.' "keys" "key list"
jeq "$OUT" '.keys | length' 6 "key list"
jeq "$OUT" '[.keys[] | keys | sort] | unique' "[$(jq -cn --arg f "$KEY_OBJ_FIELDS" '$f | split(" ") | sort')]" "key list fields"
jeq "$OUT" "[.keys[] | select(.id == \"$RSA_ID\") | [.class, .type, .bits, .curve, .label]]" \
    '[["private","rsa",2048,null,"rsa1"],["public","rsa",2048,null,"rsa1"]]' "key list (rsa1)"
jeq "$OUT" "[.keys[] | select(.id == \"$EC_ID\") | [.class, .type, .bits, .curve, .label]]" \
    '[["private","ec",256,"P-256","ec1"],["public","ec",256,"P-256","ec1"]]' "key list (ec1)"
jeq "$OUT" '[.keys[].id] == ([.keys[].id] | sort)' true "key list sorted by id"
ok key list alice --pin-fd 3 3<<<"$U"
assert_matches "$OUT" "^private  rsa 2048 +id $RSA_ID  'rsa1'  no certificate\$" "key list (text)"
assert_matches "$OUT" "^public   ec P-256 +id $EC_ID  'ec1'  no certificate\$" "key list (text)"

step "csr"
# csr_checks JSON KIND BITS CURVE SIGALG HASH
ok --json csr alice --key "$RSA_ID" --subject "/CN=ukey story rsa/O=ukey tests" \
    --san "DNS:rsa.example,email:rsa@example" --key-usage digitalSignature --ext-key-usage clientAuth \
    --out "$T/rsa1.csr" --pin-fd 3 3<<<"$U"
json_ok "$OUT" "csr --json"
jkeys "$OUT" '.' "subject key_id public_key hash signature_algorithm extensions file format pem" "csr --json"
jeq "$OUT" '.subject' '"O=ukey tests,CN=ukey story rsa"' "csr"
jeq "$OUT" '.key_id' "\"$RSA_ID\"" "csr"
jeq "$OUT" '.public_key' '{"bits":2048,"curve":null,"type":"rsa"}' "csr"
jeq "$OUT" '.hash' '"sha256"' "csr"
jeq "$OUT" '.signature_algorithm' '"sha256WithRSAEncryption"' "csr"
jeq "$OUT" '.extensions' '{"ext_key_usage":["clientAuth"],"key_usage":["digitalSignature"],"subject_alt_names":["DNS:rsa.example","email:rsa@example"]}' "csr"
jeq "$OUT" '.file' "\"$T/rsa1.csr\"" "csr"
jeq "$OUT" '.format' '"pem"' "csr"
[[ $(jr "$OUT" .pem) == "$(cat "$T/rsa1.csr")" ]] || fail "csr: .pem differs from the file written"
out=$(ossl req -in "$T/rsa1.csr" -verify -noout -subject 2>&1)
assert_contains "$out" "verify OK" "the CSR's signature (made on the Key)"
assert_contains "$out" "subject=CN = ukey story rsa, O = ukey tests" "the CSR's subject"
[[ $(ossl req -in "$T/rsa1.csr" -noout -pubkey) == "$(cat "$T/rsa1.onkey.pub.pem")" ]] \
    || fail "the CSR's public key is not the one on the Key"
out=$(ossl req -in "$T/rsa1.csr" -noout -text)
assert_contains "$out" "DNS:rsa.example, email:rsa@example" "CSR extensions"
assert_contains "$out" "TLS Web Client Authentication" "CSR extensions"
# EC, RFC 4514 subject, sha384, to standard output (PEM) and as DER.
ok csr alice --key "$EC_ID" --subject "CN=ukey story ec,O=ukey tests" --hash sha384 --pin-fd 3 3<<<"$U"
printf '%s\n' "$OUT" >"$T/ec1.csr"
out=$(ossl req -in "$T/ec1.csr" -verify -noout -text 2>&1)
assert_contains "$out" "verify OK" "EC CSR (stdout)"
assert_contains "$out" "ecdsa-with-SHA384" "EC CSR --hash sha384"
assert_contains "$out" "Subject: O = ukey tests, CN = ukey story ec" "EC CSR (RFC 4514 subject: most specific first)"
ok csr alice --key "$EC_ID" --subject "/O=ukey tests/CN=ukey story ec" --ext-key-usage clientAuth \
    --key-usage digitalSignature --der --out "$T/ec1.csr.der" --pin-fd 3 3<<<"$U"
assert_contains "$OUT" "Wrote the request for $EC_SUBJECT (key $EC_ID, ec P-256, ecdsa-with-SHA256) to $T/ec1.csr.der" "csr (text)"
ossl req -inform DER -in "$T/ec1.csr.der" -out "$T/ec1.csr" 2>/dev/null || fail "csr --der is not DER"
assert_contains "$(ossl req -in "$T/ec1.csr" -verify -noout 2>&1)" "verify OK" "EC CSR (DER)"
# Errors.
uk --json csr alice --key 99 --subject "/CN=x" --pin-fd 3 3<<<"$U"
jerror 9 "csr for a key id not on the Key"
assert_contains "$ERR" "no private key on the Key has the id 99" "csr --key 99"
uk csr alice --key "$RSA_ID" --subject "no equals sign" --pin-fd 3 3<<<"$U"
expect_rc 12 "csr with a bad subject"
uk csr alice --key "$RSA_ID" --subject "/CN=x" --san "FOO:bar" --pin-fd 3 3<<<"$U"
expect_rc 12 "csr with a bad --san"

step "the test CA issues the certificates"
issue_cert "$T/rsa1.csr" "$T/rsa1.pem" now 30
issue_cert "$T/ec1.csr" "$T/ec1.pem" now 20
ossl x509 -in "$T/rsa1.pem" -outform DER -out "$T/rsa1.der"
assert_eq "$(ossl x509 -in "$T/ec1.pem" -noout -subject -nameopt RFC2253)" "subject=$EC_SUBJECT" "the EC certificate's subject"
# The key id is the SKI the CA computed (RFC 5280 method 1).
assert_contains "$(ossl x509 -in "$T/rsa1.pem" -noout -ext subjectKeyIdentifier)" \
    "$(sed 's/../&:/g; s/:$//' <<<"${RSA_ID^^}")" "the certificate's SKI is the key id"

step "cert write"
uk --json cert write alice --file "$T/rsa1.pem" --pin-fd 3 3<<<"$U"
expect_rc 0 "cert write"
json_ok "$OUT" "cert write --json"
jkeys "$OUT" '.' "certificates replaced" "cert write --json"
jeq "$OUT" '.replaced' '[]' "cert write"
jeq "$OUT" '.certificates | length' 1 "cert write"
c=$(jv "$OUT" '.certificates[0]')
jkeys "$c" '.' "$CERT_FIELDS action" "cert write .certificates[0]"
jeq "$c" '.action' '"written"' "cert write"
jeq "$c" '.label' '"ukey story rsa"' "cert write (default label: the CN)"
jeq "$c" '.id' "\"$RSA_ID\"" "cert write (the key's id)"
jeq "$c" '.subject' '"O=ukey tests,CN=ukey story rsa"' "cert write"
jeq "$c" '.issuer' '"CN=ukey test CA,O=ukey tests"' "cert write"
jeq "$c" '.serial' "\"$(ossl x509 -in "$T/rsa1.pem" -noout -serial | cut -d= -f2 | tr A-F a-f)\"" "cert write"
jeq "$c" '.not_after' "\"$(iso_not_after "$T/rsa1.pem")\"" "cert write"
jeq "$c" '.status' '"valid"' "cert write"
jeq "$c" '.category' '"user"' "cert write"
jeq "$c" '.has_key' true "cert write"
# ... and the EC one, from DER, with a label.
ossl x509 -in "$T/ec1.pem" -outform DER -out "$T/ec1.der"
ok cert write alice --file "$T/ec1.der" --label "ec client" --pin-fd 3 3<<<"$U"
assert_matches "$OUT" "^Wrote id $EC_ID  'ec client'  user  $EC_SUBJECT  until [0-9-]{10} \\((19|20) days left\\), key present\$" "cert write (text)"
# Writing it again changes nothing.
uk --json cert write alice --file "$T/ec1.pem" --label "ec client" --pin-fd 3 3<<<"$U"
expect_rc 0 "cert write (again)"
jeq "$OUT" '.certificates[0].action' '"already_present"' "cert write (again)"
# pkcs11-tool sees the certificate objects next to the keys.
out=$(p11 --token-label alice --list-objects --type cert)
assert_contains "$out" "label:      ukey story rsa" "pkcs11-tool --list-objects"
assert_contains "$out" "ID:         $RSA_ID" "pkcs11-tool --list-objects"

step "cert list, key list, list"
d_rsa=$(days_left "$T/rsa1.pem")
ok --json cert list alice
jkeys "$OUT" '.' "certificates" "cert list"
jeq "$OUT" '.certificates | length' 2 "cert list"
c=$(jq -c ".certificates[] | select(.id == \"$RSA_ID\")" <<<"$OUT")
jkeys "$c" '.' "$CERT_FIELDS" "cert list (rsa)"
jeq "$c" '[.label, .subject, .issuer, .status, .category, .has_key]' \
    '["ukey story rsa","O=ukey tests,CN=ukey story rsa","CN=ukey test CA,O=ukey tests","valid","user",true]' "cert list (rsa)"
jeq "$c" '.not_before' "\"$(date -u -d "$(ossl x509 -in "$T/rsa1.pem" -noout -startdate | cut -d= -f2)" +%Y-%m-%dT%H:%M:%SZ)\"" "cert list"
jeq "$c" '.not_after' "\"$(iso_not_after "$T/rsa1.pem")\"" "cert list"
d=$(jr "$c" .days_left)
[[ $d == "$d_rsa" || $d == $((d_rsa - 1)) ]] || fail "cert list: days_left $d, expected $d_rsa"
[[ $d -ge 29 && $d -le 30 ]] || fail "cert list: days_left $d for a 30-day certificate"
c=$(jq -c ".certificates[] | select(.id == \"$EC_ID\")" <<<"$OUT")
jeq "$c" '[.label, .subject, .has_key, .category]' "[\"ec client\",\"$EC_SUBJECT\",true,\"user\"]" "cert list (ec)"
ok cert list alice
assert_matches "$OUT" "^id $RSA_ID  'ukey story rsa'  user  O=ukey tests,CN=ukey story rsa  until [0-9-]{10} \\((29|30) days left\\), key present\$" "cert list (text)"
ok --json key list alice --pin-fd 3 3<<<"$U"
jeq "$OUT" "[.keys[] | select(.id == \"$RSA_ID\" or .id == \"$EC_ID\") | .has_certificate] | unique" '[true]' "key list: has_certificate"
jeq "$OUT" '[.keys[] | select(.id == "0a0b") | .has_certificate] | unique' '[false]' "key list: has_certificate"
ok --json list
jeq "$OUT" '.keys[] | select(.label == "alice") | .certificates' 2 "ukey list: certificates"
jeq "$OUT" '.keys[] | select(.label == "alice") | .nearest_expiry.label' '"ec client"' "ukey list: nearest_expiry"

step "cert show"
ok --json cert show alice --id "$RSA_ID"
jkeys "$OUT" '.' "certificates" "cert show"
jeq "$OUT" '.certificates | length' 1 "cert show"
c=$(jv "$OUT" '.certificates[0]')
jkeys "$c" '.' "$DETAIL_FIELDS" "cert show"
jeq "$c" '[.subject, .issuer, .has_key, .id, .key_id, .label]' \
    "[\"O=ukey tests,CN=ukey story rsa\",\"CN=ukey test CA,O=ukey tests\",true,\"$RSA_ID\",\"$RSA_ID\",\"ukey story rsa\"]" "cert show"
jeq "$c" '.key_usage' '["digitalSignature"]' "cert show"
jeq "$c" '.ext_key_usage' '["clientAuth"]' "cert show"
jeq "$c" '.subject_alt_names' '["DNS:rsa.example","email:rsa@example"]' "cert show"
jeq "$c" '.crl_distribution_points' '[]' "cert show"
jeq "$c" '.fingerprints.sha256' "\"$(ossl x509 -in "$T/rsa1.pem" -noout -fingerprint -sha256 | cut -d= -f2 | tr -d : | tr A-F a-f)\"" "cert show"
jeq "$c" '.fingerprints.sha1' "\"$(ossl x509 -in "$T/rsa1.pem" -noout -fingerprint -sha1 | cut -d= -f2 | tr -d : | tr A-F a-f)\"" "cert show"
jeq "$c" '.signature_algorithm' '"ecdsa-with-SHA256"' "cert show (signed by the EC CA)"
jeq "$c" '.public_key' '{"bits":2048,"curve":null,"type":"rsa"}' "cert show"
jeq "$c" '.subject_key_id' "\"$RSA_ID\"" "cert show"
jeq "$c" '[.is_ca, .self_signed, .file, .status, .category]' '[false,false,null,"valid","user"]' "cert show"
d=$(jr "$c" .days_left)
[[ $d -ge 29 && $d -le 30 ]] || fail "cert show: days_left $d for a 30-day certificate"
ok cert show alice --label "ec client"
assert_contains "$OUT" "subject:        $EC_SUBJECT" "cert show (text)"
assert_contains "$OUT" "issuer:         CN=ukey test CA,O=ukey tests" "cert show (text)"
assert_contains "$OUT" "key on the Key: id $EC_ID" "cert show (text)"
uk cert show alice
expect_rc 4 "cert show with two certificates and no --id/--label"
uk --json cert show alice --id 99
jerror 9 "cert show --id 99"
# A file: the CA certificate.
ok --json cert show --file "$T/ca/ca.pem"
c=$(jv "$OUT" '.certificates[0]')
jkeys "$c" '.' "$DETAIL_FIELDS" "cert show --file"
jeq "$c" '[.label, .id, .key_id, .has_key, .is_ca, .self_signed, .category, .file]' \
    "[null,null,null,false,true,true,\"authority\",\"$T/ca/ca.pem\"]" "cert show --file"
jeq "$c" '.public_key' '{"bits":256,"curve":"P-256","type":"ec"}' "cert show --file"

step "cert export: identical to what the CA issued"
ok cert export alice --id "$RSA_ID" --out "$T/rsa1.exported.pem"
assert_contains "$OUT" "Exported certificate 'ukey story rsa' (O=ukey tests,CN=ukey story rsa) to $T/rsa1.exported.pem (PEM)" "cert export (text)"
cmp "$T/rsa1.pem" "$T/rsa1.exported.pem" || fail "the exported PEM differs from the CA-issued certificate"
ok cert export alice --id "$RSA_ID" --der --out "$T/rsa1.exported.der"
cmp "$T/rsa1.der" "$T/rsa1.exported.der" || fail "the exported DER differs from the CA-issued certificate"
ok cert export alice --label "ec client"
[[ "$OUT" == "$(cat "$T/ec1.pem")" ]] || fail "cert export to stdout differs from the CA-issued certificate"
ok --json cert export alice --id "$EC_ID"
jkeys "$OUT" '.' "label id subject file format pem" "cert export --json"
jeq "$OUT" '[.label, .id, .subject, .file, .format]' "[\"ec client\",\"$EC_ID\",\"$EC_SUBJECT\",null,\"pem\"]" "cert export --json"
[[ $(jr "$OUT" .pem) == "$(cat "$T/ec1.pem")" ]] || fail "cert export --json: .pem differs from the CA-issued certificate"

step "TLS 1.3 client authentication with the keys on the Key (OpenSSL + libp11)"
engine_conf "$T/openssl.cnf" "$UKEY_MODULE" "$U"
ossl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/server.key" \
    -out "$T/server.csr" -subj "/O=ukey tests/CN=127.0.0.1" 2>/dev/null
printf '%s\n' "basicConstraints=CA:FALSE" "keyUsage=critical,digitalSignature" \
    "extendedKeyUsage=serverAuth" "subjectAltName=IP:127.0.0.1" >"$T/server.ext"
ossl x509 -req -in "$T/server.csr" -CA "$T/ca/ca.pem" -CAkey "$T/ca/ca.key" -CAcreateserial \
    -days 2 -extfile "$T/server.ext" -out "$T/server.pem" 2>/dev/null
# tls ID CERT CN SIGTYPE
tls() {
    local id=$1 cert=$2 cn=$3 sigtype=$4 uri out srv port='' i rc=0 srv_rc=0 server_pid
    uri="pkcs11:token=alice;id=$(sed 's/../%&/g' <<<"$id");type=private"
    : >"$T/server.out"
    env -u OPENSSL_CONF timeout --kill-after=5 "$UKEY_TEST_TIMEOUT" \
        openssl s_server -tls1_3 -accept 127.0.0.1:0 -naccept 1 -rev \
        -cert "$T/server.pem" -key "$T/server.key" -CAfile "$T/ca/ca.pem" -Verify 1 -verify_return_error \
        </dev/null >"$T/server.out" 2>&1 &
    server_pid=$!
    port=$(s_server_port "$server_pid" "$T/server.out")
    out=$(printf 'ukey story\nCLOSE\n' | OPENSSL_CONF="$T/openssl.cnf" ukc openssl s_client -tls1_3 \
            -connect "127.0.0.1:$port" -ign_eof -engine pkcs11 -keyform engine -key "$uri" -cert "$cert" \
            -CAfile "$T/ca/ca.pem" -verify_return_error 2>&1) || rc=$?
    wait "$server_pid" || srv_rc=$?
    srv=$(cat "$T/server.out")
    if [[ $rc -ne 0 || $srv_rc -ne 0 ]]; then
        show "s_client (exit $rc)" "$out"; show "s_server (exit $srv_rc)" "$srv"
        fail "TLS handshake with key $id on the Key failed"
    fi
    assert_contains "$out" "TLSv1.3" "s_client"
    assert_contains "$out" "Verify return code: 0 (ok)" "s_client"
    assert_contains "$out" "yrots yeku" "s_client (the server's reversed echo)"
    assert_matches "$srv" "depth=0 .*CN *= *$cn" "s_server verify callback"
    assert_not_contains "$srv" "verify return:0" "s_server verify callback"
    assert_matches "$srv" "Peer certificate: .*CN *= *$cn" "s_server (the client certificate)"
    assert_contains "$srv" "Verification: OK" "s_server (client certificate verified)"
    assert_contains "$srv" "Signature type: $sigtype" "s_server (CertificateVerify made on the Key)"
    assert_contains "$srv" "CONNECTION ESTABLISHED" "s_server"
}
tls "$RSA_ID" "$T/rsa1.exported.pem" "ukey story rsa" RSA-PSS
ok cert export alice --id "$EC_ID" --out "$T/ec1.exported.pem"
tls "$EC_ID" "$T/ec1.exported.pem" "ukey story ec" ECDSA
rm -f "$T/openssl.cnf"   # it holds the PIN (the state/transcript checks do not look here)

step "a certificate for no key on the Key is refused"
soft_cert "stranger" "$T/stranger.pem" now 10
uk --json cert write alice --file "$T/stranger.pem" --pin-fd 3 3<<<"$U"
jerror 9 "cert write of a certificate for no key on the Key"
assert_contains "$ERR" "no key on Key 'alice' matches the certificate CN=stranger,O=ukey tests, so nothing was written" "cert write (no key)"
ok --json cert list alice
jeq "$OUT" '.certificates | length' 2 "nothing written"
# A chain: the user certificate and the CA's are written together (from stdin).
cat "$T/rsa1.pem" "$T/ca/ca.pem" >"$T/chain.pem"
UK_STDIN=$T/chain.pem ok --json cert write alice --file - --pin-fd 3 3<<<"$U"
jeq "$OUT" '[.certificates[] | [.action, .category]]' '[["already_present","user"],["written","authority"]]' "cert write of a chain"
ok --json cert list alice
jeq "$OUT" '.certificates | length' 3 "CA certificate written"
jeq "$OUT" '[.certificates[] | select(.category == "authority") | [.subject, .has_key]]' '[["CN=ukey test CA,O=ukey tests",false]]' "CA certificate written"

step "renewal: a new certificate for the same key replaces the old one"
issue_cert "$T/rsa1.csr" "$T/rsa1-renewed.pem" now 60
ok --json cert write alice --file "$T/rsa1-renewed.pem" --pin-fd 3 3<<<"$U"
jeq "$OUT" '.certificates[0] | [.action, .id, .has_key]' "[\"written\",\"$RSA_ID\",true]" "renewal"
jeq "$OUT" '.replaced | length' 1 "renewal"
jeq "$OUT" '.replaced[0].not_after' "\"$(iso_not_after "$T/rsa1.pem")\"" "renewal: the old certificate went"
ok --json cert list alice
jeq "$OUT" "[.certificates[] | select(.id == \"$RSA_ID\") | .not_after]" "[\"$(iso_not_after "$T/rsa1-renewed.pem")\"]" "renewal"
ok cert export alice --id "$RSA_ID" --out "$T/renewed.exported.pem"
cmp "$T/rsa1-renewed.pem" "$T/renewed.exported.pem" || fail "the renewed certificate read back differs"

step "cert delete and key delete"
uk --json key delete alice --id "$RSA_ID" --yes --pin-fd 3 3<<<"$U"
jerror 1 "key delete while its certificate is on the Key"
assert_contains "$ERR" "still uses the key $RSA_ID: delete it first with \`ukey cert delete --id $RSA_ID\`" "key delete (certificate left)"
uk cert delete alice --id "$RSA_ID" --pin-fd 3 3<<<"$U"
expect_rc 11 "cert delete without --yes and no terminal"
uk cert delete alice --pin-fd 3 3<<<"$U"
expect_rc 2 "cert delete without --id/--label"
ok --json cert delete alice --id "$RSA_ID" --yes --pin-fd 3 3<<<"$U"
jkeys "$OUT" '.' "deleted" "cert delete"
jeq "$OUT" '[.deleted[] | [.id, .label]]' "[[\"$RSA_ID\",\"ukey story rsa\"]]" "cert delete"
jkeys "$(jv "$OUT" '.deleted[0]')" '.' "$CERT_FIELDS" "cert delete .deleted[0]"
uk --json cert delete alice --id "$RSA_ID" --yes --pin-fd 3 3<<<"$U"
jerror 9 "cert delete of a certificate that is gone"
uk key delete alice --id "$RSA_ID" --pin-fd 3 3<<<"$U"
expect_rc 11 "key delete without --yes and no terminal"
ok --json key delete alice --id "$RSA_ID" --yes --pin-fd 3 3<<<"$U"
jkeys "$OUT" '.' "deleted certificates_left" "key delete"
jeq "$OUT" '[.deleted[] | .class] | sort' '["private","public"]' "key delete"
jeq "$OUT" "[.deleted[] | .id] | unique" "[\"$RSA_ID\"]" "key delete"
jeq "$OUT" '.certificates_left' '[]' "key delete"
uk --json key delete alice --id "$RSA_ID" --yes --pin-fd 3 3<<<"$U"
jerror 9 "key delete of a key that is gone"
# --force: the key goes, its certificate stays (and says so).
ok --json key delete alice --id "$EC_ID" --yes --force --pin-fd 3 3<<<"$U"
jeq "$OUT" '[.certificates_left[] | [.id, .label, .subject]]' "[[\"$EC_ID\",\"ec client\",\"$EC_SUBJECT\"]]" "key delete --force"
ok --json cert list alice
jeq "$OUT" "[.certificates[] | select(.id == \"$EC_ID\") | .has_key]" '[false]' "certificate whose key was deleted"
ok cert delete alice --label "ec client" --yes --pin-fd 3 3<<<"$U"
assert_contains "$OUT" "Deleted certificate id $EC_ID  'ec client'" "cert delete (text)"
ok --json key list alice --pin-fd 3 3<<<"$U"
jeq "$OUT" '[.keys[].id] | unique' '["0a0b"]' "keys left"
ok --json cert list alice
jeq "$OUT" '[.certificates[] | .category]' '["authority"]' "certificates left: the CA's"
ca_id=$(jr "$OUT" '.certificates[0].id')
jeq "$OUT" '.certificates[0].id' "\"$(ossl x509 -in "$T/ca/ca.pem" -noout -ext subjectKeyIdentifier | tail -n1 | tr -d ' :' | tr A-F a-f)\"" "a CA certificate's id is its SKI"
ok --json info alice
jeq "$OUT" '[.objects[] | [.class, .id]] | sort' "[[\"certificate\",\"$ca_id\"],[\"public-key\",\"0a0b\"]]" "objects left"

finish
