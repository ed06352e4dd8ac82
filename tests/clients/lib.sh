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

set -euo pipefail

: "${UKEY_MODULE:?UKEY_MODULE must name the PKCS#11 module under test}"
: "${UKEY_TEST_TIMEOUT:=60}"
SOFTHSM_MODULE=${SOFTHSM_MODULE:-/usr/lib/softhsm/libsofthsm2.so}
TEST_NAME=$(basename "$0" .sh)
CLIENTS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

TOKEN_LABEL=${UKEY_TEST_TOKEN_LABEL:-ukey-test}
USER_PIN=${UKEY_TEST_PIN:-123456}
SO_PIN=${UKEY_TEST_SO_PIN:-12345678}

SKIP=77

log()  { printf '[%s] %s\n' "$TEST_NAME" "$*" >&2; }
step() { printf '\n[%s] === %s\n' "$TEST_NAME" "$*" >&2; }
fail() { printf '[%s] FAIL: %s\n' "$TEST_NAME" "$*" >&2; exit 1; }
skip() { printf '[%s] SKIP: %s\n' "$TEST_NAME" "$*" >&2; exit "$SKIP"; }

# assert_contains TEXT NEEDLE [WHAT]: fixed-string match.
assert_contains() {
    if ! grep -qF -- "$2" <<<"$1"; then
        printf '%s\n' "----- output -----" "$1" "------------------" >&2
        fail "${3:-output} does not contain '$2'"
    fi
}
# assert_matches TEXT ERE [WHAT]
assert_matches() {
    if ! grep -qE -- "$2" <<<"$1"; then
        printf '%s\n' "----- output -----" "$1" "------------------" >&2
        fail "${3:-output} does not match /$2/"
    fi
}
assert_not_contains() {
    if grep -qF -- "$2" <<<"$1"; then
        printf '%s\n' "----- output -----" "$1" "------------------" >&2
        fail "${3:-output} unexpectedly contains '$2'"
    fi
}
# assert_count TEXT ERE N [WHAT]: exactly N lines match.
assert_count() {
    local n
    n=$(grep -cE -- "$2" <<<"$1" || true)
    if [[ $n -ne $3 ]]; then
        printf '%s\n' "----- output -----" "$1" "------------------" >&2
        fail "${4:-output}: expected $3 line(s) matching /$2/, found $n"
    fi
}

# Sanitizer runtimes to preload into (unsanitized) client tools when the
# module under test is built with -fsanitize=address,undefined.
SAN_PRELOAD=
if [[ ${UKEY_SANITIZED:-0} == 1 ]]; then
    for lib in libasan.so libubsan.so; do
        p=$(gcc -print-file-name="$lib" 2>/dev/null || true)
        [[ -n $p && $p == /* && -e $p ]] || skip "UKEY_SANITIZED=1 but $lib not found (gcc -print-file-name)"
        SAN_PRELOAD+="${SAN_PRELOAD:+:}$(readlink -f "$p")"
    done
fi

# ukc CMD ARGS...: run a client that loads the module, with a bounded time and,
# in the sanitized tree, the sanitizer runtimes preloaded. Leak detection is
# off there: the leaks of unsanitized clients are not ours; the module's own
# leaks are checked by the module tests, not here.
ukc() {
    if [[ -n $SAN_PRELOAD ]]; then
        env LD_PRELOAD="$SAN_PRELOAD${LD_PRELOAD:+:$LD_PRELOAD}" \
            ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0:halt_on_error=1:print_stacktrace=1:suppressions=$CLIENTS_DIR/asan-clients.supp" \
            UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1" \
            timeout --kill-after=5 "$UKEY_TEST_TIMEOUT" "$@"
    else
        timeout --kill-after=5 "$UKEY_TEST_TIMEOUT" "$@"
    fi
}

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

need() {
    local c
    for c in "$@"; do
        command -v "$c" >/dev/null 2>&1 || skip "required command '$c' not installed"
    done
}

ukey_cleanup() {
    local rc=$?
    # Kill any background job we started (servers), by PID.
    local p
    for p in $(jobs -p); do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    if [[ -n ${T:-} && -d $T ]]; then
        if [[ ${UKEY_TEST_KEEP:-0} == 1 ]]; then
            log "keeping $T"
        else
            rm -rf -- "$T"
        fi
    fi
    if [[ $rc -eq 0 ]]; then log "PASS"; fi
    exit "$rc"
}

ukey_setup() {
    need softhsm2-util pkcs11-tool openssl timeout
    [[ -r $UKEY_MODULE ]] || fail "module $UKEY_MODULE not found"
    [[ -r $SOFTHSM_MODULE ]] || skip "SoftHSM2 ($SOFTHSM_MODULE) not installed"

    umask 077
    T=$(mktemp -d "${TMPDIR:-/tmp}/ukey-$TEST_NAME.XXXXXX")
    chmod 0700 "$T"
    trap ukey_cleanup EXIT
    trap 'exit 130' INT TERM

    mkdir -m 0700 "$T/tokens" "$T/state"
    cat >"$T/softhsm2.conf" <<EOF
directories.tokendir = $T/tokens
objectstore.backend = file
log.level = ERROR
slots.removable = false
EOF
    cat >"$T/ukey.conf" <<EOF
state_dir = "$T/state"

[[backend]]
name = "softhsm"
module = "$SOFTHSM_MODULE"
pin_counter = "ukey"
EOF
    export SOFTHSM2_CONF="$T/softhsm2.conf" UKEY_CONF="$T/ukey.conf"
    export HOME="$T"  # keep clients from touching ~/.pki, ~/.config etc.

    local out
    out=$(timeout 60 softhsm2-util --init-token --free --label "$TOKEN_LABEL" \
            --so-pin "$SO_PIN" --pin "$USER_PIN" 2>&1) \
        || { printf '%s\n' "$out" >&2; fail "softhsm2-util --init-token failed"; }
    log "env in $T (module $UKEY_MODULE${SAN_PRELOAD:+, sanitizer runtimes preloaded})"
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
