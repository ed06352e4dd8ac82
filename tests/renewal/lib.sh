# tests/renewal/lib.sh: helpers for the renewal tests (docs/renewal.md).
#
# Source it first thing from a test script:   . "$(dirname "$0")/lib.sh"
#
# It re-runs the script inside a private network namespace (unshare --net;
# a user namespace too when not root), so the SCEP server, which listens on
# every interface, is reachable only on this namespace's 127.0.0.1. Then it
# sources tests/cli/lib.sh (UKEY, UKEY_MODULE, private SoftHSM2 + ukey.conf).
#
#   scep_start [ARGS...]   a scepserver with its own CA depot and challenge in
#                          $T/scep; sets SCEP_URL, SCEP_FP (CA SHA-256),
#                          SCEP_CHALLENGE, SCEP_CA (PEM file)
#   enrol_key LABEL        a Key initialised and enrolled: sets USER_PIN, CERT_ID
#   tls_check ID [WHAT]    TLS 1.3 client auth with the certificate + key of
#                          CKA_ID ID through OpenSSL + libp11 against s_server
#   fake_start MODE        ukey-fake-scep --mode MODE with the scepserver's CA
#                          key (so the pinned fingerprint fits): FAKE_URL, its
#                          log in $T/fake.log; fake_stop ends it
#   key_snapshot LABEL PIN what is on the Key (objects, labels) and in the
#                          renewal journal folder, to compare before/after

# A private mount namespace too: cli_setup then hides this machine's p11-kit
# registrations from `ukey doctor` (tests/cli/lib.sh, private_p11kit).
if [[ -z ${UKEY_RENEWAL_NETNS:-} ]]; then
    export UKEY_RENEWAL_NETNS=1 UKEY_P11KIT_PRIVATE=1
    if [[ $EUID -eq 0 ]] && unshare --net --mount -- true 2>/dev/null; then
        exec unshare --net --mount --propagation private -- bash "$0" "$@"
    elif unshare --user --map-root-user --net --mount -- true 2>/dev/null; then
        exec unshare --user --map-root-user --net --mount --propagation private -- bash "$0" "$@"
    fi
    echo "[renewal] SKIP: no private network namespace (unshare --net) for the SCEP server" >&2
    exit 77
fi
ip link set lo up 2>/dev/null || { echo "[renewal] SKIP: cannot bring up lo in the namespace" >&2; exit 77; }

# shellcheck source=../cli/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../cli/lib.sh"
TEST_NAME=renewal.$(basename "$0" .sh)
RENEWAL_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# free_port: a TCP port nobody listens on in this namespace.
free_port() {
    local p
    for p in $(shuf -i 20000-60000 -n 20); do
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return 0; fi
    done
    fail "no free port"
}

# wait_port PORT PID: until something listens on 127.0.0.1:PORT; non-zero
# if PID dies first or after 30 s (a bound for a server that never listens: the
# wait ends as soon as it does).
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_port() { wait_until 30 alive_or_gone "$2" port_open "$1"; }

# uk_crash N ARGS...: ukey with UKEY_TEST_CRASH_AFTER=N; expects it to have
# killed itself (SIGKILL, 137) well before the time limit.
uk_crash() {
    local n=$1 t0=$SECONDS
    shift
    RC=0
    UKEY_TEST_CRASH_AFTER=$n setsid -w timeout --kill-after=5 "$UKEY_TEST_TIMEOUT" "$UKEY" "$@" \
        </dev/null >"$T/uk.out" 2>"$T/uk.err" || RC=$?
    OUT=$(<"$T/uk.out")
    ERR=$(<"$T/uk.err")
    { printf '$ UKEY_TEST_CRASH_AFTER=%s ukey %s\n' "$n" "$*"; cat "$T/uk.out" "$T/uk.err"; printf '(exit %s)\n' "$RC"; } \
        >>"$T/transcript"
    ((SECONDS - t0 < UKEY_TEST_TIMEOUT)) || fail "ukey $* timed out"
    expect_rc 137 "ukey renew with UKEY_TEST_CRASH_AFTER=$n (SIGKILL)"
}
SCEP_PID=
scep_start() {
    need scepserver openssl
    local port
    mkdir -p "$T/scep"
    if [[ ! -f $T/scep/depot/ca.pem ]]; then
        (cd "$T/scep" && scepserver ca -init -depot depot -keySize 2048 -organization "ukey renewal test" \
            >"$T/scep/init.log" 2>&1) || { cat "$T/scep/init.log" >&2; fail "scepserver ca -init failed"; }
    fi
    SCEP_CHALLENGE=chal-$RANDOM$RANDOM
    port=$(free_port)
    scepserver -depot "$T/scep/depot" -port "$port" -challenge "$SCEP_CHALLENGE" -allowrenew 0 "$@" \
        >>"$T/scep/server.log" 2>&1 &
    SCEP_PID=$!
    wait_port "$port" "$SCEP_PID" || { cat "$T/scep/server.log" >&2; fail "scepserver did not start"; }
    SCEP_URL="http://127.0.0.1:$port/scep"
    SCEP_CA=$T/scep/depot/ca.pem
    SCEP_FP=$(openssl x509 -in "$SCEP_CA" -noout -fingerprint -sha256 | cut -d= -f2 | tr -d : | tr A-F a-f)
    printf '%s\n' "$SCEP_CHALLENGE" >"$T/challenge"
    pin "$SCEP_CHALLENGE"
    log "scepserver (pid $SCEP_PID) at $SCEP_URL, CA $SCEP_FP"
}
scep_stop() {
    if [[ -n $SCEP_PID ]]; then
        kill "$SCEP_PID" 2>/dev/null || true
        wait "$SCEP_PID" 2>/dev/null || true
        SCEP_PID=
    fi
}

FAKE_PID=
fake_start() {
    local port
    : "${UKEY_FAKE_SCEP:?UKEY_FAKE_SCEP must name the ukey-fake-scep test server}"
    if [[ ! -f $T/fake-ca.key ]]; then
        openssl pkey -in "$T/scep/depot/ca.key" -passin pass: -out "$T/fake-ca.key" 2>/dev/null \
            || fail "cannot read the CA key"
    fi
    port=$(free_port)
    "$UKEY_FAKE_SCEP" --port "$port" --ca-cert "$SCEP_CA" --ca-key "$T/fake-ca.key" --mode "$1" \
        >>"$T/fake.log" 2>&1 &
    FAKE_PID=$!
    wait_port "$port" "$FAKE_PID" || { cat "$T/fake.log" >&2; fail "ukey-fake-scep did not start"; }
    FAKE_URL="http://127.0.0.1:$port/scep"
}
fake_stop() {
    kill -0 "$FAKE_PID" 2>/dev/null || { cat "$T/fake.log" >&2; fail "ukey-fake-scep died"; }
    kill "$FAKE_PID" 2>/dev/null || true
    wait "$FAKE_PID" 2>/dev/null || true
}

key_snapshot() {
    ok --json key list "$1" --pin-fd 3 3<<<"$2"
    jq -c '.keys | sort_by(.class, .id, .label)' <<<"$OUT"
    ok --json cert list "$1"
    jq -c '.certificates | map(del(.days_left)) | sort_by(.id, .serial)' <<<"$OUT"
    ls -A "$T/state/renewal" 2>/dev/null || true
}

# enrol_key LABEL: ukey init + ukey enroll against the running scepserver.
enrol_key() {
    USER_PIN=Us3r-$RANDOM-pIn
    init_key "$1" "S0-$RANDOM-pIn" "$USER_PIN"
    uk --json enroll "$1" --ca "$SCEP_URL" --ca-fingerprint "$SCEP_FP" --subject "/CN=$1/O=ukey tests" \
        --challenge-file "$T/challenge" --pin-fd 3 3<<<"$USER_PIN"
    expect_rc 0 "ukey enroll"
    json_ok "$OUT" "ukey --json enroll"
    jeq "$OUT" '.state' '"completed"' "enroll"
    CERT_ID=$(jr "$OUT" '.key_id')
}

# cert_pem ID OUT [KEY]: the certificate with CKA_ID ID from the (only, or
# the named) Key, as PEM.
cert_pem() {
    uk cert export ${3:+"$3"} --id "$1" --out "$2"
    expect_rc 0 "ukey cert export --id $1"
}

SERVER_READY=
tls_setup() {
    [[ -n $SERVER_READY ]] && return 0
    [[ -r $ENGINE_SO ]] || skip "libp11 engine $ENGINE_SO not installed (libengine-pkcs11-openssl)"
    local d=$T/tls
    mkdir -p "$d"
    env -u OPENSSL_CONF openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$d/server.key" -out "$d/server.pem" -days 2 -subj "/CN=127.0.0.1" 2>/dev/null
    SERVER_READY=1
}

# tls_check ID TOKEN_LABEL [WHAT]: a TLS 1.3 handshake where the client
# authenticates with the certificate of id ID and its key on the Key,
# through libp11 (the PIN in the engine's config file, not on argv); the
# server requires a client certificate that chains to the SCEP CA.
tls_check() {
    local id=$1 label=$2 what=${3:-TLS client auth} d=$T/tls out rc=0 port
    tls_setup
    cert_pem "$id" "$d/client.pem" "$label"
    engine_conf "$d/openssl.cnf" "$UKEY_MODULE" "$USER_PIN"
    : >"$d/server.out"
    env -u OPENSSL_CONF timeout --kill-after=5 "$UKEY_TEST_TIMEOUT" \
        openssl s_server -tls1_3 -accept 127.0.0.1:0 -naccept 1 -rev \
        -cert "$d/server.pem" -key "$d/server.key" \
        -CAfile "$SCEP_CA" -Verify 1 -verify_return_error </dev/null >"$d/server.out" 2>&1 &
    local spid=$!
    port=$(s_server_port "$spid" "$d/server.out")
    out=$(printf 'renewal ok\nCLOSE\n' |
        OPENSSL_CONF="$d/openssl.cnf" ukc openssl s_client -tls1_3 -connect "127.0.0.1:$port" -ign_eof \
            -engine pkcs11 -keyform engine -key "pkcs11:token=$label;id=%$(sed 's/../&%/g; s/%$//' <<<"$id");type=private" \
            -cert "$d/client.pem" 2>&1) || rc=$?
    local src=0
    wait "$spid" || src=$?
    if [[ $rc -ne 0 || $src -ne 0 ]] || ! grep -q "ko lawener" <<<"$out" \
        || ! grep -q "Verification: OK" "$d/server.out"; then
        show "s_client (rc $rc)" "$out"
        show "s_server (rc $src)" "$(cat "$d/server.out")"
        return 1
    fi
    log "$what: TLS 1.3 client auth with key $id OK"
}
