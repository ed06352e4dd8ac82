#!/usr/bin/env bash
# service.clients: real applications of an unprivileged uid reach the Key
# through the service and nothing else (issue 12 must-show 6): no ukey or
# SoftHSM2 setting in their environment, only p11-kit's.
#   - pkcs11-tool with p11-kit-client.so: the token, RSA-2048 key generation,
#     a signature OpenSSL verifies;
#   - OpenSSL with libp11 (engine) on p11-kit-client.so: a CSR signed on the
#     Key, verified; the CA's certificate written with `ukey cert write` and
#     listed with `ukey cert list` as the user; a TLS 1.3 handshake with
#     client authentication, signed on the Key through the service;
#   - GnuTLS p11tool with p11-kit-client.so: the token and, logged in, the
#     private key;
#   - NSS (modutil, certutil) with p11-kit-client.so: the key on the token;
#   - p11-kit-proxy.so with ukey-remote.module (conf/) registered in the
#     user's own p11-kit folder: pkcs11-tool sees the Key, with no address
#     in the environment;
#   - `ukey browser enable` registers that proxy in the user's NSS database
#     (ukey's own module would find the service's state closed), and NSS
#     sees the Key.
. "$(dirname "$0")/lib.sh"
need pkcs11-tool openssl p11tool modutil certutil
service_setup
service_start

H=$T/home-a
mkdir -m 0700 "$H" && chown $USER_A:$USER_A "$H"
# asa CMD...: CMD as uid A, HOME=$H, only the service's address set.
asa() {
    setpriv --reuid=$USER_A --regid=$USER_A --clear-groups -- env -i HOME="$H" PATH=/usr/bin:/bin \
        P11_KIT_SERVER_ADDRESS="unix:path=$PKCS11_SOCK" "$@"
}
# asa_ok WHAT CMD...: asa, which must succeed; its output on stdout.
asa_ok() {
    local what=$1 out rc=0; shift
    out=$(asa timeout -k 2 120 "$@" 2>&1) || rc=$?
    ((rc == 0)) || { show "$what" "$out"; fail "$what exited with $rc"; }
    printf '%s\n' "$out"
}

step "pkcs11-tool through p11-kit-client.so"
out=$(asa_ok "pkcs11-tool -L" pkcs11-tool --module "$P11_CLIENT" --list-token-slots)
assert_matches "$out" "token label +: Alice\$" "pkcs11-tool --list-token-slots"
assert_not_contains "$out" fakecard "pkcs11-tool --list-token-slots (A may not use the card)"
out=$(asa_ok "pkcs11-tool keypairgen" pkcs11-tool --module "$P11_CLIENT" --token-label Alice --login --pin "$U1" \
    --keypairgen --key-type rsa:2048 --id 01 --label svc1)
assert_contains "$out" "Key pair generated" "RSA-2048 key generation"
head -c 1000 /dev/urandom >"$H/data"
chown $USER_A "$H/data"
asa_ok "pkcs11-tool sign" pkcs11-tool --module "$P11_CLIENT" --token-label Alice --login --pin "$U1" \
    --sign --mechanism SHA256-RSA-PKCS --id 01 -i "$H/data" -o "$H/data.sig" >/dev/null
asa_ok "pkcs11-tool read pubkey" pkcs11-tool --module "$P11_CLIENT" --token-label Alice \
    --read-object --type pubkey --id 01 -o "$H/pub.der" >/dev/null
openssl pkey -pubin -inform DER -in "$H/pub.der" -out "$T/pub.pem" || fail "the public key is not DER"
out=$(openssl dgst -sha256 -verify "$T/pub.pem" -signature "$H/data.sig" "$H/data" 2>&1)
assert_contains "$out" "Verified OK" "the signature made through the service"

step "OpenSSL with libp11 on p11-kit-client.so: a CSR signed on the Key"
[[ -r $ENGINE_SO ]] || skip "libp11's engine not found ($ENGINE_SO)"
engine_conf "$H/engine.cnf" "$P11_CLIENT" "$U1"
chown $USER_A "$H/engine.cnf"
asa_ok "openssl req" env OPENSSL_CONF="$H/engine.cnf" openssl req -new -engine pkcs11 -keyform engine \
    -key "pkcs11:token=Alice;id=%01;type=private" -subj "/CN=ukey service test" -out "$H/req.pem" >/dev/null
out=$(openssl req -in "$H/req.pem" -verify -noout 2>&1)
assert_contains "$out" "verify OK" "the CSR's signature"

step "the certificate from a CA written and listed by ukey as A, then TLS client auth through the service"
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$T/ca.key" -subj "/CN=ukey service test CA" -days 2 \
    -out "$T/ca.pem" 2>/dev/null
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$T/server.key" -subj "/CN=127.0.0.1" -days 2 \
    -out "$T/server.pem" 2>/dev/null
printf '%s\n' "basicConstraints=CA:FALSE" "keyUsage=critical,digitalSignature" "extendedKeyUsage=clientAuth" \
    >"$T/client.ext"
openssl x509 -req -in "$H/req.pem" -CA "$T/ca.pem" -CAkey "$T/ca.key" -CAcreateserial -days 2 \
    -extfile "$T/client.ext" -out "$T/client.pem" 2>/dev/null
chmod 0644 "$T/client.pem" "$T/ca.pem"
asa_ok "ukey cert write" env UKEY_CONF="$T/ukey.conf" "$UKEY" cert write Alice --file "$T/client.pem" --pin-fd 3 \
    3<<<"$U1" >/dev/null
out=$(asa_ok "ukey cert list" env UKEY_CONF="$T/ukey.conf" "$UKEY" --json cert list Alice)
jeq "$out" '[.certificates[] | .subject | test("ukey service test")]' '[true]' "ukey cert list as A"
: >"$T/server.out"
openssl s_server -tls1_3 -accept 127.0.0.1:0 -naccept 1 -rev -cert "$T/server.pem" -key "$T/server.key" \
    -CAfile "$T/ca.pem" -Verify 1 -verify_return_error </dev/null >"$T/server.out" 2>&1 &
server_pid=$!
port=$(s_server_port "$server_pid" "$T/server.out")
out=$(printf 'ukey says hello\nCLOSE\n' | asa timeout -k 2 60 env OPENSSL_CONF="$H/engine.cnf" openssl s_client \
    -tls1_3 -connect "127.0.0.1:$port" -ign_eof -engine pkcs11 -keyform engine \
    -key "pkcs11:token=Alice;id=%01;type=private" -cert "$T/client.pem" 2>&1) || true
wait "$server_pid" || { show s_server "$(cat "$T/server.out")"; show s_client "$out"; fail "TLS client auth through the service failed"; }
assert_contains "$out" "olleh syas yeku" "the TLS session (reversed echo)"
assert_contains "$(cat "$T/server.out")" "verify return:1" "s_server verified the client's certificate"

step "GnuTLS p11tool on p11-kit-client.so"
out=$(asa_ok "p11tool --list-tokens" p11tool --provider "$P11_CLIENT" --list-tokens)
assert_contains "$out" "Label: Alice" "p11tool --list-tokens"
out=$(asa_ok "p11tool --list-privkeys" env GNUTLS_PIN="$U1" p11tool --batch --provider "$P11_CLIENT" --login \
    --list-privkeys "pkcs11:token=Alice")
assert_contains "$out" "Label: svc1" "p11tool --list-privkeys"

step "NSS on p11-kit-client.so"
printf '%s\n' "$U1" >"$H/pin.txt"
chown $USER_A "$H/pin.txt"
mkdir -m 0700 "$H/nssdb" && chown $USER_A "$H/nssdb"
asa_ok "certutil -N" certutil -N --empty-password -d "sql:$H/nssdb" >/dev/null
asa_ok "modutil -add" modutil -dbdir "sql:$H/nssdb" -add ukey-service -libfile "$P11_CLIENT" -force </dev/null >/dev/null
out=$(asa_ok "certutil -K" certutil -K -d "sql:$H/nssdb" -h Alice -f "$H/pin.txt")
assert_contains "$out" "svc1" "certutil -K on the Key"

step "p11-kit-proxy.so with ukey-remote.module in the user's p11-kit folder"
PROXY=$(dirname "$P11_CLIENT")/../p11-kit-proxy.so
[[ -r $PROXY ]] || PROXY=/usr/lib/x86_64-linux-gnu/p11-kit-proxy.so
mkdir -p "$H/.config/pkcs11/modules"
sed "s|/run/ukey/pkcs11|$PKCS11_SOCK|" "$SERVICE_DIR/../../conf/service-mode/ukey-remote.module" >"$H/.config/pkcs11/modules/ukey-remote.module"
chown -R $USER_A:$USER_A "$H/.config"
out=$(setpriv --reuid=$USER_A --regid=$USER_A --clear-groups -- env -i HOME="$H" PATH=/usr/bin:/bin \
    timeout -k 2 60 pkcs11-tool --module "$PROXY" --list-token-slots 2>&1) || { show proxy "$out"; fail "pkcs11-tool on the proxy failed"; }
assert_matches "$out" "token label +: Alice\$" "the Key through p11-kit-proxy.so"

step "ukey browser enable in service mode registers p11-kit's proxy, and NSS sees the Key through it"
mkdir -p "$H/.pki/nssdb" && chown -R $USER_A:$USER_A "$H/.pki" && chmod 0700 "$H/.pki/nssdb"
asa_ok "certutil -N (browser db)" certutil -N --empty-password -d "sql:$H/.pki/nssdb" >/dev/null
asa_ok "ukey browser enable" env UKEY_CONF="$T/ukey.conf" "$UKEY" browser enable >/dev/null
out=$(asa_ok "modutil -list" modutil -dbdir "sql:$H/.pki/nssdb" -list </dev/null)
assert_contains "$out" "library name: $(readlink -f "$PROXY")" "the browser database loads p11-kit's proxy"
assert_matches "$out" "token: Alice *\$" "NSS sees Alice through the proxy"

check_no_pin_in_logs
daemon_stop
