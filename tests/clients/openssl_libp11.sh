#!/usr/bin/env bash
# OpenSSL 3 + libp11 engine through the module: CSR from a key on the Key,
# certificate issued by a test CA and written to the Key, then a TLS 1.3
# handshake with client authentication using that key (EC P-256, then
# RSA-2048 which TLS 1.3 signs with RSA-PSS).
. "$(dirname "$0")/lib.sh"
need openssl
[[ -r $ENGINE_SO ]] || skip "libp11 engine $ENGINE_SO not installed (libengine-pkcs11-openssl)"
ukey_setup

# The PIN goes into the engine configuration, not onto argv.
engine_conf "$T/openssl.cnf" "$UKEY_MODULE" "$USER_PIN"
printf '%s\n' "" "[req]" "distinguished_name = req_dn" "prompt = no" "[req_dn]" "CN = unused" >>"$T/openssl.cnf"
# Engine-using OpenSSL runs see this config; the server and CA never do.
ossl_p11() { OPENSSL_CONF="$T/openssl.cnf" ukc openssl "$@"; }
ossl() { env -u OPENSSL_CONF openssl "$@"; }

step "test CA and server certificate (software keys)"
make_ca "$T"
ossl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$T/server.key" -out "$T/server.csr" -subj "/O=ukey tests/CN=127.0.0.1" 2>/dev/null
printf '%s\n' "basicConstraints=CA:FALSE" "keyUsage=critical,digitalSignature" \
    "extendedKeyUsage=serverAuth" "subjectAltName=IP:127.0.0.1" >"$T/server.ext"
ossl x509 -req -in "$T/server.csr" -CA "$T/ca.pem" -CAkey "$T/ca.key" -CAcreateserial \
    -days 2 -extfile "$T/server.ext" -out "$T/server.pem" 2>/dev/null
printf '%s\n' "basicConstraints=CA:FALSE" "keyUsage=critical,digitalSignature" \
    "extendedKeyUsage=clientAuth" >"$T/client.ext"

# tls_client_auth KEYTYPE ID LABEL CN SIGTYPE
tls_client_auth() {
    local keytype=$1 id=$2 label=$3 cn=$4 sigtype=$5 out
    local uri="pkcs11:token=$TOKEN_LABEL;object=$label;type=private"

    step "[$label] generate $keytype key pair on the Key"
    out=$(p11_login --keypairgen --key-type "$keytype" --id "$id" --label "$label")
    assert_contains "$out" "Key pair generated" "keypairgen $keytype"

    step "[$label] CSR signed on the Key by OpenSSL via libp11"
    out=$(ossl_p11 req -new -engine pkcs11 -keyform engine -key "$uri" \
            -subj "/O=ukey tests/CN=$cn" -out "$T/$label.csr" 2>&1) \
        || { printf '%s\n' "$out" >&2; fail "openssl req with the engine key failed"; }
    out=$(ossl req -in "$T/$label.csr" -verify -noout -subject 2>&1)
    assert_contains "$out" "verify OK" "CSR self-signature"
    assert_contains "$out" "CN = $cn" "CSR subject"
    # The CSR carries the public key that is on the Key.
    p11 --read-object --type pubkey --id "$id" -o "$T/$label.pub.der" >/dev/null
    der_to_pem_pubkey "$T/$label.pub.der" "$T/$label.pub.pem"
    [[ "$(ossl req -in "$T/$label.csr" -noout -pubkey)" == "$(cat "$T/$label.pub.pem")" ]] \
        || fail "CSR public key differs from the public key on the Key"

    step "[$label] CA issues the client certificate; written to the Key"
    ossl x509 -req -in "$T/$label.csr" -CA "$T/ca.pem" -CAkey "$T/ca.key" -CAcreateserial \
        -days 2 -extfile "$T/client.ext" -out "$T/$label.pem" 2>/dev/null
    ossl x509 -in "$T/$label.pem" -outform DER -out "$T/$label.der"
    out=$(p11_login --write-object "$T/$label.der" --type cert --id "$id" --label "$label")
    assert_matches "$out" 'Certificate Object; type = X\.509 cert' "write-object cert"
    p11 --read-object --type cert --id "$id" -o "$T/$label.back.der" >/dev/null
    cmp -s "$T/$label.der" "$T/$label.back.der" || fail "certificate read back from the Key differs"

    step "[$label] TLS 1.3 handshake with client authentication"
    : >"$T/server.out"
    # -rev: echo server that reverses lines and closes on "CLOSE"; it never
    # reads stdin, -naccept 1 makes it exit after our connection. Port 0: the
    # kernel picks a free port and s_server prints it ("ACCEPT 127.0.0.1:N").
    env -u OPENSSL_CONF timeout --kill-after=5 "$UKEY_TEST_TIMEOUT" \
        openssl s_server -tls1_3 -accept 127.0.0.1:0 -naccept 1 -rev \
        -cert "$T/server.pem" -key "$T/server.key" \
        -CAfile "$T/ca.pem" -Verify 1 -verify_return_error \
        </dev/null >"$T/server.out" 2>&1 &
    local server_pid=$! port='' i
    port=$(s_server_port "$server_pid" "$T/server.out")
    log "s_server on 127.0.0.1:$port"

    local rc=0
    out=$(printf 'ukey says hello\nCLOSE\n' |
          ossl_p11 s_client -tls1_3 -connect "127.0.0.1:$port" -ign_eof \
            -engine pkcs11 -keyform engine -key "$uri" -cert "$T/$label.pem" \
            -CAfile "$T/ca.pem" -verify_return_error 2>&1) || rc=$?
    local srv_rc=0
    wait "$server_pid" || srv_rc=$?
    local srv
    srv=$(cat "$T/server.out")
    if [[ $rc -ne 0 || $srv_rc -ne 0 ]]; then
        printf '%s\n' "----- s_client (rc $rc) -----" "$out" "----- s_server (rc $srv_rc) -----" "$srv" >&2
        fail "TLS handshake with the key on the Key failed"
    fi
    # Client side: TLS 1.3, server verified, the echo came back.
    assert_contains "$out" "TLSv1.3" "s_client"
    assert_contains "$out" "Verify return code: 0 (ok)" "s_client"
    assert_contains "$out" "olleh syas yeku" "s_client (reversed echo)"
    # Server side: it requested, received and verified our certificate.
    assert_matches "$srv" "depth=0 .*CN *= *$cn" "s_server verify callback"
    assert_contains "$srv" "verify return:1" "s_server verify callback"
    assert_not_contains "$srv" "verify return:0" "s_server verify callback"
    assert_matches "$srv" "Peer certificate: .*CN *= *$cn" "s_server peer certificate"
    assert_contains "$srv" "Verification: OK" "s_server"
    # The client's CertificateVerify was made on the Key with this scheme.
    assert_contains "$srv" "Signature type: $sigtype" "s_server"
    assert_contains "$srv" "CONNECTION ESTABLISHED" "s_server"
}

tls_client_auth EC:prime256v1 11 tls-ec "ukey client ec" ECDSA
tls_client_auth rsa:2048 12 tls-rsa "ukey client rsa" RSA-PSS
