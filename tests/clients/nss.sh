#!/usr/bin/env bash
# NSS through the module: modutil registers and lists it, certutil sees the
# certificate and the private key written to the Key, and NSS makes a
# certificate request signed on the Key.
. "$(dirname "$0")/lib.sh"
need modutil certutil
ukey_setup

# Keep the module mapped after C_Finalize so sanitizer and crash reports
# can symbolize it.
export NSS_DISABLE_UNLOAD=1
DB="sql:$T/nssdb"
printf '%s\n' "$USER_PIN" >"$T/pin.txt"   # certutil -f: the PIN is never on argv

# nss CMD ARGS...: an NSS tool, bounded, stdin closed so it cannot prompt.
nss() {
    local out rc=0
    out=$(ukc "$@" </dev/null 2>&1) || rc=$?
    if [[ $rc -ne 0 ]]; then
        printf '%s\n' "\$ $*" "$out" >&2
        fail "$1 exited with $rc"
    fi
    printf '%s\n' "$out"
}

step "key pair and certificate put on the Key with pkcs11-tool"
keypair_with_cert 31 nsscert "ukey nss"

step "empty NSS database; modutil -add"
mkdir -m 0700 "$T/nssdb"
nss certutil -N --empty-password -d "$DB" >/dev/null
out=$(nss modutil -dbdir "$DB" -add ukey -libfile "$UKEY_MODULE" -force)
assert_contains "$out" 'Module "ukey" added to database.' "modutil -add"

step "modutil -list shows the module and the token"
out=$(nss modutil -dbdir "$DB" -list)
assert_matches "$out" '^ *[0-9]+\. ukey$' "modutil -list"
assert_contains "$out" "library name: $UKEY_MODULE" "modutil -list"
assert_count "$out" 'status: loaded' 2 "modutil -list (internal module and ukey)"
assert_matches "$out" "token: $TOKEN_LABEL *\$" "modutil -list"
out=$(nss modutil -dbdir "$DB" -list ukey)
assert_matches "$out" "Token Name: $TOKEN_LABEL *\$" "modutil -list ukey"
assert_matches "$out" 'Status: Enabled' "modutil -list ukey"

step "certutil -L lists the certificate on the Key"
out=$(nss certutil -L -h all -d "$DB" -f "$T/pin.txt")
assert_matches "$out" "^$TOKEN_LABEL:nsscert +[a-zA-Z]*,[a-zA-Z]*,[a-zA-Z]*\$" "certutil -L -h all"
# -r prints the raw DER certificate: it must be the one written.
ukc certutil -L -h "$TOKEN_LABEL" -d "$DB" -f "$T/pin.txt" -n "$TOKEN_LABEL:nsscert" -r \
    </dev/null >"$T/nss.der" 2>"$T/certutil.err" || { cat "$T/certutil.err" >&2; fail "certutil -L -r failed"; }
cmp -s "$T/cert.der" "$T/nss.der" || fail "certificate read by NSS differs from the one written"

step "certutil -K lists the private key (login with the PIN file)"
out=$(nss certutil -K -h "$TOKEN_LABEL" -d "$DB" -f "$T/pin.txt")
assert_matches "$out" "^< *[0-9]+> +ec +.* (${TOKEN_LABEL}:)?nsscert\$" "certutil -K"

step "certutil -R: NSS signs a certificate request with the key on the Key"
head -c 64 /dev/urandom >"$T/noise"   # -z: else certutil asks for keyboard noise
# -k takes the key's CKA_ID in hex.
nss certutil -R -d "$DB" -h "$TOKEN_LABEL" -f "$T/pin.txt" -z "$T/noise" -k 31 \
    -s "O=ukey tests,CN=ukey nss request" -o "$T/req.der" >/dev/null
out=$(openssl req -inform DER -in "$T/req.der" -verify -noout -subject 2>&1)
assert_contains "$out" "verify OK" "CSR made by NSS"
assert_contains "$out" "CN = ukey nss request" "CSR made by NSS"
[[ "$(openssl req -inform DER -in "$T/req.der" -noout -pubkey)" == "$(cat "$T/pub-31.pem")" ]] \
    || fail "NSS CSR public key differs from the key on the Key"
