# shellcheck shell=bash
# tests/clients/lib.sh: shared helpers for the client interoperability tests.
#
# Source it from a test script:   . "$(dirname "$0")/lib.sh"
#
# Environment:
#   UKEY_MODULE      PKCS#11 module under test (required). Normally
#                    libukey-pkcs11.so; /usr/lib/softhsm/libsofthsm2.so also
#                    works, which is handy to tell module bugs from test bugs.
#   UKEY_SANITIZED   1 when UKEY_MODULE was built with ASan+UBSan: the client
#                    tools (not sanitized) are then run with the sanitizer
#                    runtimes preloaded, see ukc().
#   UKEY_TEST_KEEP   1 to keep the private temp dir (its path is printed).
#   UKEY_TEST_TIMEOUT  seconds any single client command may take (default 60).
#
# ukey_setup creates a private environment and exports:
#   T            the temp dir (0700), removed on exit
#   SOFTHSM2_CONF, UKEY_CONF   config files inside $T
#   TOKEN_LABEL, USER_PIN, SO_PIN
# and initialises one SoftHSM2 token there (directly through SoftHSM2, the
# backend, as a user would before plugging the Key into ukey).

TEST_NAME=$(basename "$0" .sh)
# shellcheck source=../lib/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"

: "${UKEY_MODULE:?UKEY_MODULE must name the PKCS#11 module under test}"

TOKEN_LABEL=${UKEY_TEST_TOKEN_LABEL:-ukey-test}
USER_PIN=${UKEY_TEST_PIN:-123456}
SO_PIN=${UKEY_TEST_SO_PIN:-12345678}

# p11 ARGS...: pkcs11-tool on the module under test; prints stdout+stderr,
# fails the test (with the output) if the tool fails.
p11() {
    local out rc=0
    out=$(ukc pkcs11-tool --module "$UKEY_MODULE" "$@" 2>&1) || rc=$?
    if [[ $rc -ne 0 ]]; then
        printf '%s\n' "\$ pkcs11-tool $*" "$out" >&2
        fail "pkcs11-tool exited with $rc"
    fi
    printf '%s\n' "$out"
}
# p11_login ARGS...: same, logged in as the user on our token.
p11_login() { p11 --token-label "$TOKEN_LABEL" --login --pin "$USER_PIN" "$@"; }

ukey_setup() {
    need softhsm2-util pkcs11-tool openssl timeout
    [[ -r $UKEY_MODULE ]] || fail "module $UKEY_MODULE not found"
    [[ -r $SOFTHSM_MODULE ]] || skip "SoftHSM2 ($SOFTHSM_MODULE) not installed"

    test_dir_setup
    mkdir -m 0700 "$T/tokens" "$T/state"
    softhsm_conf "$T/softhsm2.conf" "$T/tokens"
    ukey_conf "$T/state" "$SOFTHSM_MODULE" softhsm ukey >"$T/ukey.conf"
    export SOFTHSM2_CONF="$T/softhsm2.conf" UKEY_CONF="$T/ukey.conf"
    export HOME="$T"  # keep clients from touching ~/.pki, ~/.config etc.

    local out
    out=$(timeout 60 softhsm2-util --init-token --free --label "$TOKEN_LABEL" \
            --so-pin "$SO_PIN" --pin "$USER_PIN" 2>&1) \
        || { printf '%s\n' "$out" >&2; fail "softhsm2-util --init-token failed"; }
    log "env in $T (module $UKEY_MODULE${SAN_PRELOAD:+, sanitizer runtimes preloaded})"
}

# keypair_with_cert ID LABEL CN: an EC P-256 key pair made on the token with
# pkcs11-tool, and a certificate for it (O=ukey tests, CN) written next to it,
# all with CKA_ID ID and LABEL.
keypair_with_cert() {
    local out
    out=$(p11_login --keypairgen --key-type EC:prime256v1 --id "$1" --label "$2")
    assert_contains "$out" "Key pair generated" "keypairgen"
    cert_for_token_key "$1" "/O=ukey tests/CN=$3" "$T/cert.der"
    out=$(p11_login --write-object "$T/cert.der" --type cert --id "$1" --label "$2")
    assert_matches "$out" 'Certificate Object; type = X\.509 cert' "write-object cert"
}

# der_to_pem_pubkey IN OUT: the token hands out DER SubjectPublicKeyInfo.
der_to_pem_pubkey() { openssl pkey -pubin -inform DER -in "$1" -out "$2"; }

# make_ca DIR: a throwaway EC P-256 CA, DIR/ca.key DIR/ca.pem
make_ca() {
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$1/ca.key" -out "$1/ca.pem" -days 2 \
        -subj "/O=ukey tests/CN=ukey test CA" \
        -addext basicConstraints=critical,CA:TRUE \
        -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null \
        || fail "cannot create the test CA"
}

# cert_for_token_key ID SUBJECT OUTDER: a certificate (DER) for the public key
# with CKA_ID ID on the token, signed by a throwaway CA (the test only needs a
# certificate object on the Key that matches a key pair).
cert_for_token_key() {
    local id=$1 subj=$2 out=$3
    [[ -f $T/ca.pem ]] || make_ca "$T"
    p11 --read-object --type pubkey --id "$id" -o "$T/pub-$id.der" >/dev/null
    der_to_pem_pubkey "$T/pub-$id.der" "$T/pub-$id.pem"
    # -force_pubkey lets the CA certify a key whose private half it cannot use.
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$T/dummy.key" -subj "$subj" -out "$T/dummy.csr" 2>/dev/null
    openssl x509 -req -in "$T/dummy.csr" -CA "$T/ca.pem" -CAkey "$T/ca.key" \
        -CAcreateserial -days 2 -force_pubkey "$T/pub-$id.pem" \
        -outform DER -out "$out" 2>/dev/null || fail "cannot issue a certificate"
}
