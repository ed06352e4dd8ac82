# shellcheck shell=bash
# tests/lib/common.sh: what every shell suite shares (cli, clients, daemon,
# pin, renewal, security, pcsc). A suite's own lib.sh sources it first:
#   . "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
# and keeps only what is truly the suite's. Sourcing it twice is harmless
# (the second time does nothing, so it never undoes a suite's overrides).
#
#   messages     log step fail skip show need       (prefixed with $TEST_NAME)
#   assertions   assert_contains assert_matches assert_not_contains assert_eq
#                assert_count
#   waiting      now_ms alive wait_until alive_or_gone
#   clients      ukc CMD... (sanitizer runtimes preloaded when UKEY_SANITIZED=1)
#   private dir  test_dir_setup, test_cleanup (EXIT trap), on_cleanup FN
#   configs      softhsm_conf FILE TOKENDIR, ukey_conf STATE MODULE [...],
#                engine_conf FILE MODULE PIN (libp11)
#   JSON         jv jr jeq jtype jmatch jkeys json_ok
#
# Environment: UKEY_SANITIZED (1 in the ASan+UBSan tree), UKEY_TEST_KEEP (1
# keeps the private dir, "fail" keeps it when the test fails; default
# $TEST_KEEP_DEFAULT), UKEY_TEST_TIMEOUT (seconds a single command may take,
# default 60), SOFTHSM_MODULE, UKEY_PKCS11_ENGINE.

[[ -n ${UKEY_TEST_COMMON:-} ]] && return 0
UKEY_TEST_COMMON=1

set -euo pipefail

: "${UKEY_TEST_TIMEOUT:=60}"
: "${TEST_NAME:=$(basename "$0" .sh)}"
SOFTHSM_MODULE=${SOFTHSM_MODULE:-/usr/lib/softhsm/libsofthsm2.so}
ENGINE_SO=${UKEY_PKCS11_ENGINE:-/usr/lib/x86_64-linux-gnu/engines-3/pkcs11.so}
TESTS_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SKIP=77

# --- messages ----------------------------------------------------------------

log()  { printf '[%s] %s\n' "$TEST_NAME" "$*" >&2; }
step() { printf '\n[%s] === %s\n' "$TEST_NAME" "$*" >&2; }
fail() { printf '[%s] FAIL: %s\n' "$TEST_NAME" "$*" >&2; exit 1; }
skip() { printf '[%s] SKIP: %s\n' "$TEST_NAME" "$*" >&2; exit "$SKIP"; }
show() { printf '%s\n' "----- $1 -----" "$2" "------------------" >&2; }

need() {
    local c
    for c in "$@"; do
        command -v "$c" >/dev/null 2>&1 || skip "required command '$c' not installed"
    done
}

# --- assertions --------------------------------------------------------------

# has_text TEXT NEEDLE: TEXT contains NEEDLE (fixed string), as `grep -qF`
# would say: a needle of several lines matches if any of its lines does.
# One line (nearly always) is matched by bash itself: a fork of grep costs
# ~8 ms of CPU on these machines, and the suites assert thousands of times.
has_text() {
    if [[ $2 == *$'\n'* ]]; then grep -qF -- "$2" <<<"$1"; else [[ $1 == *"$2"* ]]; fi
}
# assert_contains TEXT NEEDLE [WHAT]: fixed-string match.
assert_contains() {
    has_text "$1" "$2" || { show output "$1"; fail "${3:-output} does not contain '$2'"; }
}
# assert_matches TEXT ERE [WHAT]
assert_matches() {
    grep -qE -- "$2" <<<"$1" || { show output "$1"; fail "${3:-output} does not match /$2/"; }
}
assert_not_contains() {
    if has_text "$1" "$2"; then show output "$1"; fail "${3:-output} unexpectedly contains '$2'"; fi
}
# assert_eq ACTUAL EXPECTED [WHAT]
assert_eq() {
    [[ $1 == "$2" ]] || fail "${3:-value}: expected '$2', got '$1'"
}
# assert_count TEXT ERE N [WHAT]: exactly N lines match.
assert_count() {
    local n
    n=$(grep -cE -- "$2" <<<"$1" || true)
    [[ $n -eq $3 ]] || { show output "$1"; fail "${4:-output}: expected $3 line(s) matching /$2/, found $n"; }
}

# --- waiting -----------------------------------------------------------------

# now_ms: epoch milliseconds (bash's clock, no fork of date(1)).
now_ms() { local t=${EPOCHREALTIME//[.,]/}; printf '%s\n' "${t:0:${#t}-3}"; }

# seconds_ms SECONDS: SECONDS (e.g. 2, 0.5, 1.25) in milliseconds, without a fork.
seconds_ms() {
    local s=$1 int frac
    [[ $s =~ ^([0-9]*)(\.([0-9]*))?$ ]] || { printf '0\n'; return 1; }
    int=${BASH_REMATCH[1]:-0} frac=${BASH_REMATCH[3]:-}000
    printf '%d\n' $((10#$int * 1000 + 10#${frac:0:3}))
}

# alive PID: the process exists and is not a zombie.
alive() {
    local st
    local line
    { IFS= read -r line <"/proc/$1/stat"; } 2>/dev/null || return 1
    # The state is the field after the command name, which ends at the last ')'.
    line=${line##*) }
    st=${line%% *}
    [[ -n $st && $st != Z && $st != X ]]
}

# wait_until SECONDS CMD...: CMD every 50 ms until it succeeds; 1 on timeout
# (SECONDS may be fractional). CMD returning 2 means "give up now" (e.g. the
# process waited for died) and is returned at once.
wait_until() {
    local limit=$1 rc deadline; shift
    deadline=$(($(now_ms) + $(seconds_ms "$limit")))
    while :; do
        "$@" && return 0
        rc=$?
        [[ $rc -eq 2 ]] && return 2
        (($(now_ms) < deadline)) || return 1
        sleep 0.05
    done
}

# alive_or_gone PID CMD...: 0 if CMD succeeds, else 2 if PID had died before
# CMD ran (waiting longer is pointless), else 1. Sampling liveness first
# avoids a race with a process that does the thing and exits at once.
alive_or_gone() {
    local pid=$1 was_alive=1; shift
    alive "$pid" || was_alive=0
    "$@" && return 0
    [[ $was_alive -eq 1 ]] && return 1
    return 2
}

# --- client tools ------------------------------------------------------------

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

# ukc CMD ARGS...: a client tool (not sanitized) that loads the module, with a
# time limit and, in the sanitized tree, the sanitizer runtimes preloaded.
# Leak detection is off there: the leaks of unsanitized clients are not ours
# (the module's own are checked by the module tests); bugs of the client
# tools themselves are suppressed with tests/clients/asan-clients.supp (e.g.
# pkcs11-tool reading an EC public key).
CLIENT_ASAN_SUPP=$TESTS_LIB_DIR/../clients/asan-clients.supp
ukc() {
    if [[ -n $SAN_PRELOAD ]]; then
        env LD_PRELOAD="$SAN_PRELOAD${LD_PRELOAD:+:$LD_PRELOAD}" \
            ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0:halt_on_error=1:print_stacktrace=1:suppressions=$CLIENT_ASAN_SUPP" \
            UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1" \
            timeout --kill-after=5 "$UKEY_TEST_TIMEOUT" "$@"
    else
        timeout --kill-after=5 "$UKEY_TEST_TIMEOUT" "$@"
    fi
}

# --- the private dir ---------------------------------------------------------

CLEANUP_HOOKS=()
# on_cleanup FN: test_cleanup calls FN (with the exit code) before it removes
# $T; the last registered runs first.
on_cleanup() { CLEANUP_HOOKS=("$1" "${CLEANUP_HOOKS[@]}"); }

# test_dir_setup [BASE]: $T, a private dir (0700, umask 077) below BASE
# (default $TMPDIR or /tmp), removed by test_cleanup on exit.
test_dir_setup() {
    umask 077
    T=$(mktemp -d "${1:-${TMPDIR:-/tmp}}/ukey-$TEST_NAME.XXXXXX")
    chmod 0700 "$T"
    trap test_cleanup EXIT
    trap 'exit 130' INT TERM
}

# test_cleanup (the EXIT trap): the hooks, then every background job killed
# (by PID), then $T removed unless UKEY_TEST_KEEP (default $TEST_KEEP_DEFAULT,
# else 0) says to keep it: 1 always, "fail" when the test failed (not when
# it was skipped).
test_cleanup() {
    local rc=$? fn p keep
    trap - EXIT
    for fn in "${CLEANUP_HOOKS[@]}"; do "$fn" "$rc" || true; done
    keep=${UKEY_TEST_KEEP:-${TEST_KEEP_DEFAULT:-0}} # after the hooks: one may ask to keep $T
    for p in $(jobs -p); do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    if [[ -n ${T:-} && -d $T ]]; then
        if [[ $keep == 1 || ($rc -ne 0 && $rc -ne $SKIP && $keep == fail) ]]; then
            log "keeping $T"
        else
            rm -rf -- "$T"
        fi
    fi
    if [[ $rc -eq 0 ]]; then log "PASS (${SECONDS}s)"; fi
    exit "$rc"
}

# --- configuration files -----------------------------------------------------

# softhsm_conf FILE TOKENDIR: a SoftHSM2 config with its tokens in TOKENDIR.
softhsm_conf() {
    cat >"$1" <<EOF
directories.tokendir = $2
objectstore.backend = file
log.level = ERROR
slots.removable = false
EOF
}

# ukey_conf STATE_DIR MODULE [NAME [PIN_COUNTER [LOG_LEVEL]]]: a ukey.conf
# with one backend on stdout (name default "softhsm"); an empty PIN_COUNTER
# leaves it out (the default), an empty LOG_LEVEL leaves [log] out.
ukey_conf() {
    printf 'state_dir = "%s"\n' "$1"
    if [[ -n ${5:-} ]]; then
        printf '\n[log]\nlevel = "%s"\nstderr = true\nsyslog = false\n' "$5"
    fi
    printf '\n[[backend]]\nname = "%s"\nmodule = "%s"\n' "${3:-softhsm}" "$2"
    if [[ -n ${4:-} ]]; then printf 'pin_counter = "%s"\n' "$4"; fi
}

# engine_conf FILE MODULE PIN: an OpenSSL config that loads the libp11 engine
# ($ENGINE_SO) on MODULE with PIN: the PIN is in a file, not on argv.
engine_conf() {
    cat >"$1" <<EOF
openssl_conf = openssl_init

[openssl_init]
engines = engine_section

[engine_section]
pkcs11 = pkcs11_section

[pkcs11_section]
engine_id = pkcs11
dynamic_path = $ENGINE_SO
MODULE_PATH = $2
PIN = $3
init = 0
EOF
}

# s_server_port PID OUT: the port of `openssl s_server -accept 127.0.0.1:0`
# (process PID, output in file OUT) once it prints it; fails if PID dies
# first or after 30 s (a bound for a server that never starts: the wait ends
# as soon as the port is printed).
s__accept_port() { sed -n 's/^ACCEPT 127\.0\.0\.1:\([0-9][0-9]*\)$/\1/p' "$1"; }
s__port_printed() { [[ -n $(s__accept_port "$1") ]]; }
s_server_port() {
    wait_until 30 alive_or_gone "$1" s__port_printed "$2" || { cat "$2" >&2; fail "s_server did not start"; }
    s__accept_port "$2"
}

# --- JSON --------------------------------------------------------------------

# jv JSON FILTER: the compact JSON value (strings keep their quotes: "x").
jv() { jq -c "$2" <<<"$1"; }
# jr JSON FILTER: the raw value (strings without quotes).
jr() { jq -r "$2" <<<"$1"; }

# jeq JSON FILTER EXPECTED [WHAT]: the value at FILTER, compact, equals
# EXPECTED, also compact JSON: 6, true, null, '"text"', '[1,2]'.
jeq() {
    local got
    got=$(jq -c "$2" <<<"$1" 2>&1) || { show json "$1"; fail "${4:-JSON}: jq '$2' failed: $got"; }
    if [[ $got != "$3" ]]; then
        show json "$1"
        fail "${4:-JSON}: $2 is $got, expected $3"
    fi
}
# jtype JSON FILTER TYPE [WHAT]: number, string, boolean, null, object, array.
jtype() { jeq "$1" "$2 | type" "\"$3\"" "${4:-}"; }
# jmatch JSON FILTER ERE [WHAT]: the raw value matches ERE.
jmatch() {
    local got
    got=$(jq -r "$2" <<<"$1")
    [[ $got =~ $3 ]] || { show json "$1"; fail "${4:-JSON}: $2 is '$got', does not match /$3/"; }
}
# jkeys JSON FILTER "k1 k2 ..." [WHAT]: the object at FILTER has exactly
# these keys (the documented schema, no more, no less).
jkeys() {
    local got want
    got=$(jq -r "$2 | keys_unsorted | sort | join(\" \")" <<<"$1")
    want=$(tr ' ' '\n' <<<"$3" | sort | tr '\n' ' ' | sed 's/ $//')
    [[ $got == "$want" ]] || { show json "$1"; fail "${4:-JSON}: $2 has keys [$got], expected [$want]"; }
}
# json_ok TEXT [WHAT]: TEXT is exactly one JSON document.
json_ok() {
    local n
    n=$(jq -s 'length' <<<"$1" 2>/dev/null) || { show output "$1"; fail "${2:-output} is not JSON"; }
    [[ $n == 1 ]] || { show output "$1"; fail "${2:-output}: expected one JSON document, found $n"; }
}
