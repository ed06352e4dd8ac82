# tests/daemon/lib.sh: shared helpers for the tests of ukeyd, the daemon.
#
# Source it from a test script:   . "$(dirname "$0")/lib.sh"
#
# Environment (ctest sets them, see CMakeLists.txt):
#   UKEYD            the ukeyd binary under test
#   UKEY             the ukey binary (ukey status / ukey watch are the clients)
#   UKEY_MODULE      libukey-pkcs11.so, which ukeyd's scanner child loads
#   PCSC_BIN_DIR     the folder of tests/pcsc's vcard and probe
#   DAEMON_BIN_DIR   the folder of this folder's helpers (sockpoke, slotwait)
#   UKEY_SANITIZED   1 when everything was built with ASan+UBSan
#   UKEY_TEST_KEEP   1 keeps the private dir, "fail" (default) only when the test fails
#
# It reuses tests/cli/lib.sh (assertions, jq helpers, the test CA) and, for
# tests with a real pcscd, tests/pcsc/harness.sh. daemon_setup makes the
# private dir $T with its own SoftHSM2 token folder, a ukey.conf whose
# [daemon] socket is in $T, a short rescan_interval and a [[hook]] that
# writes each event's UKEY_* environment into $T/hooks/. Bounded waits check
# that the daemon is alive *before* checking the condition (pcsc README).

: "${UKEYD:?UKEYD must name the ukeyd binary under test}"
: "${UKEY:?UKEY must name the ukey binary}"
: "${UKEY_MODULE:?UKEY_MODULE must name libukey-pkcs11.so}"
DAEMON_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../cli/lib.sh
. "$DAEMON_DIR/../cli/lib.sh"
TEST_NAME=daemon.$(basename "$0" .sh)
: "${DAEMON_WAIT:=30}"          # the default bound of a wait, seconds: it only
                                # catches a hang (a wait ends when its condition holds)
TEST_KEEP_DEFAULT=fail

UKEYD_PID=
UKEYD_RUNS=0
UKEYD_WRAP=()   # a command that execs ukeyd (e.g. setpriv as another user)
declare -gA WATCH_PID=()
DAEMON_PCSC_STARTED=0

# daemon_ok CMD...: 0 if CMD succeeds; 2 if ukeyd had died before CMD ran.
daemon_ok() { alive_or_gone "$UKEYD_PID" "$@"; }

# wait_for WHAT SECONDS CMD...: a bounded wait that fails the test with WHAT
# (and the daemon's log tail) on timeout or when ukeyd dies.
wait_for() {
    local what=$1 secs=$2 rc=0; shift 2
    wait_until "$secs" daemon_ok "$@" || rc=$?
    [[ $rc -eq 0 ]] && return 0
    daemon_log_tail
    [[ $rc -eq 2 ]] && fail "ukeyd died while waiting for: $what"
    fail "timed out after ${secs}s waiting for: $what"
}

daemon_log_tail() { [[ -f $T/ukeyd.log ]] && tail -n 40 "$T/ukeyd.log" | sed 's/^/  ukeyd.log: /' >&2 || true; }

# daemon_helper NAME: the path of this folder's helper NAME (sockpoke,
# slotwait) in $DAEMON_BIN_DIR; fails the test if it is not built.
daemon_helper() {
    local p=${DAEMON_BIN_DIR:?DAEMON_BIN_DIR must name the folder of sockpoke and slotwait}/$1
    [[ -x $p ]] || fail "$p not built"
    printf '%s\n' "$p"
}

# scan_bound SLACK: seconds within which ukeyd must see a change: three
# rescan intervals ($DAEMON_RESCAN) plus SLACK. It is the bound of a wait
# that ends as soon as the event comes, so the tests give a generous SLACK
# (20 s: ASan, a busy machine); a change never seen still fails them.
scan_bound() { awk -v i="$DAEMON_RESCAN" -v s="$1" 'BEGIN{print 3*i+s}'; }

# --- the private environment ----------------------------------------------

# daemon_setup [EXTRA_CONF]: $T, SoftHSM2 (no token yet but the empty slot),
# ukey.conf with [daemon] (socket in $T, rescan_interval $DAEMON_RESCAN,
# default 0.5 s, pcsc $DAEMON_PCSC, default false) and a hook for every
# event. EXTRA_CONF is appended ([expiry], more [[hook]]s).
daemon_setup() {
    need_ukey_env awk
    [[ -x $UKEYD ]] || fail "ukeyd binary $UKEYD not found"

    test_dir_setup
    on_cleanup daemon_cleanup
    mkdir -m 0700 "$T/tokens" "$T/state" "$T/tmp" "$T/hooks" "$T/run"
    softhsm_conf "$T/softhsm2.conf" "$T/tokens"
    # pin_counter "token": tokens made by softhsm2-util behind ukey's back
    # have no ukey PIN state, which ukey would report as locked.
    ukey_conf "$T/state" "$SOFTHSM_MODULE" softhsm token warning >"$T/ukey.conf"
    cat >>"$T/ukey.conf" <<EOF

[daemon]
socket = "$T/run/ukeyd.sock"
pcsc = ${DAEMON_PCSC:-false}
rescan_interval = ${DAEMON_RESCAN:-0.5}
scan_timeout = 20

[[hook]]
command = ["/bin/sh", "$DAEMON_DIR/hook.sh", "$T/hooks"]
timeout = 10
${1:-}
EOF
    SOCK=$T/run/ukeyd.sock
    export SOFTHSM2_CONF="$T/softhsm2.conf" UKEY_CONF="$T/ukey.conf"
    export HOME="$T" TMPDIR="$T/tmp"
    unset UKEY_LOG_LEVEL OPENSSL_CONF
    : >"$T/transcript"
    pin "$TEST_SO_PIN"
    pin "$TEST_USER_PIN"
    log "env in $T (ukeyd $UKEYD)"
}

# daemon_cleanup RC (a test_cleanup hook): watchers, ukeyd and pcscd down,
# ukeyd's log tail shown if the test failed.
daemon_cleanup() {
    local rc=$1 n
    for n in "${!WATCH_PID[@]}"; do kill "${WATCH_PID[$n]}" 2>/dev/null || true; done
    if [[ -n $UKEYD_PID ]] && alive "$UKEYD_PID"; then
        kill -TERM "$UKEYD_PID" 2>/dev/null || true
        wait_until 5 daemon_gone || kill -KILL "$UKEYD_PID" 2>/dev/null || true
    fi
    if [[ $DAEMON_PCSC_STARTED == 1 ]]; then pcsc_cleanup "$rc" || true; fi
    if [[ $rc -ne 0 && $rc -ne 77 && -n ${T:-} && -f $T/ukeyd.log ]]; then daemon_log_tail; fi
}

# pcsc_setup: a private pcscd with the vpcd reader (tests/pcsc/harness.sh);
# call after daemon_setup and before daemon_start (ukeyd inherits
# PCSCLITE_CSOCK_NAME).
pcsc_setup() {
    [[ -n ${PCSC_BIN_DIR:-} ]] || fail "PCSC_BIN_DIR must name the folder of tests/pcsc's vcard and probe"
    # shellcheck source=../pcsc/harness.sh
    . "$DAEMON_DIR/../pcsc/harness.sh"
    pcsc_start
    DAEMON_PCSC_STARTED=1
    trap test_cleanup EXIT   # pcsc_start set its own; daemon_cleanup calls pcsc_cleanup
}

# --- ukeyd -----------------------------------------------------------------

daemon_gone() { ! alive "$UKEYD_PID"; }
status_answers() { timeout -k 1 5 "$UKEY" status --socket "$SOCK" >/dev/null 2>&1; }

# daemon_start [ukeyd options]: starts ukeyd (log in $T/ukeyd.log, every
# start marked) and waits until it answers on the socket.
daemon_start() {
    [[ -z $UKEYD_PID ]] || ! alive "$UKEYD_PID" || fail "daemon_start: ukeyd $UKEYD_PID still runs"
    UKEYD_RUNS=$((UKEYD_RUNS + 1))
    printf '===== %s ukeyd start #%s\n' "$(date '+%F %T.%3N')" "$UKEYD_RUNS" >>"$T/ukeyd.log"
    "${UKEYD_WRAP[@]}" "$UKEYD" --log-level debug "$@" </dev/null >>"$T/ukeyd.log" 2>&1 &
    UKEYD_PID=$!
    wait_for "ukeyd answering on $SOCK" "$DAEMON_WAIT" status_answers
    log "ukeyd $UKEYD_PID up"
}

# daemon_stop [BOUND]: SIGTERM; it must exit 0 within BOUND s (default 10).
# ukeyd ends at once (its hooks get SIGTERM, then SIGKILL after 2 s); the
# bound catches a daemon that waits for something (a hook running to its
# timeout, a stuck child), and is generous for ASan's exit on a busy machine.
# The time taken is logged.
daemon_stop() {
    local bound=${1:-10} t0 rc=0
    t0=$(now_ms)
    kill -TERM "$UKEYD_PID"
    if ! wait_until "$bound" daemon_gone; then
        daemon_log_tail
        kill -KILL "$UKEYD_PID" 2>/dev/null || true
        fail "ukeyd did not exit within ${bound}s of SIGTERM"
    fi
    wait "$UKEYD_PID" || rc=$?
    [[ $rc -eq 0 ]] || { daemon_log_tail; fail "ukeyd exited with $rc after SIGTERM, expected 0"; }
    log "ukeyd stopped in $(($(now_ms) - t0)) ms"
    UKEYD_PID=
}

# status_json: `ukey --json status` into $ST (fails the test if it fails).
ST=''
status_json() {
    uk --json status --socket "$SOCK"
    expect_rc 0 "ukey status"
    ST=$OUT
}

subscribers() { "$UKEY" --json status --socket "$SOCK" 2>/dev/null | jq -r '.status.subscribers'; }
subscribers_at_least() { local n; n=$(subscribers) && [[ -n $n && $n != null ]] && ((n >= $1)); }

# scanned_at_least N: ukeyd has finished N backend scans and runs none now
# (status.scan.count and .running).
scanned_at_least() {
    local c
    c=$("$UKEY" --json status --socket "$SOCK" 2>/dev/null \
        | jq -r 'if .status.scan.running then -1 else .status.scan.count end') || return 1
    [[ $c =~ ^[0-9]+$ ]] && ((c >= $1))
}
# wait_first_scan: after daemon_start, until ukeyd has published what its
# first scan found (a subscriber that comes later sees none of it as events).
wait_first_scan() { wait_for "ukeyd's first scan" "$DAEMON_WAIT" scanned_at_least 1; }

# pcsc_readers_up N: status says pcscd is up with N readers. ukeyd emits a
# reader-added as it takes each reader in, so a subscriber that comes after
# this sees none of the readers found at start.
pcsc_readers_up() {
    "$UKEY" --json status --socket "$SOCK" 2>/dev/null \
        | jq -e --argjson n "$1" '.status.pcsc.state == "up" and (.status.pcsc.readers | length) == $n' >/dev/null \
        || return 1   # never 2: that would end wait_until at once
}

# watch_start NAME [ukey watch options]: a `ukey --json watch` subscriber
# writing to $T/watch.NAME.out; returns once the daemon counts it.
watch_start() {
    local name=$1 before; shift
    before=$(subscribers)
    "$UKEY" --json watch --socket "$SOCK" "$@" >"$T/watch.$name.out" 2>"$T/watch.$name.err" &
    WATCH_PID[$name]=$!
    wait_for "subscriber '$name' registered" "$DAEMON_WAIT" subscribers_at_least $((before + 1))
}

# watch_stop NAME: SIGTERM the watcher; it must exit 0 at once.
watch_stop() {
    local pid=${WATCH_PID[$1]} rc=0
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" || rc=$?
    unset "WATCH_PID[$1]"
    [[ $rc -eq 0 ]] || { cat "$T/watch.$1.err" >&2; fail "ukey watch '$1' exited with $rc on SIGTERM, expected 0"; }
}

# events NAME [JQ_FILTER]: the events of watcher NAME (compact JSON lines)
# that match FILTER (a jq boolean over one event, default true).
events() { jq -c "select(${2:-true})" "$T/watch.$1.out" 2>/dev/null || true; }
count_events() { events "$1" "${2:-true}" | grep -c . || true; }
has_events() { (($(count_events "$1" "$2") >= $3)); }

# wait_events NAME FILTER N SECONDS: watcher NAME has at least N matching events.
wait_events() {
    wait_for "$3 event(s) $2 at watcher '$1'" "$4" has_events "$1" "$2" "$3"
}

# expect_count NAME FILTER N [WHAT]: exactly N matching events.
expect_count() {
    local got
    got=$(count_events "$1" "$2")
    if [[ $got != "$3" ]]; then
        show "watch.$1.out" "$(cat "$T/watch.$1.out")"
        fail "${4:-events}: $got event(s) matching $2 at watcher '$1', expected $3"
    fi
}

# Hooks: hook.sh writes one file per run, $T/hooks/<ns>.<pid>.<event>, with
# the UKEY_* environment. hook_files EVENT [GREP]: the files of that event
# (whose content matches the fixed string GREP).
hook_files() {
    local f
    for f in "$T"/hooks/*."$1"; do
        [[ -e $f ]] || continue
        if [[ -z ${2:-} ]] || grep -qF -- "$2" "$f"; then printf '%s\n' "$f"; fi
    done
}
hook_count() { hook_files "$@" | grep -c . || true; }
has_hooks() { (($(hook_count "$1" "${3:-}") >= $2)); }
wait_hooks() { wait_for "$2 '$1' hook run(s)${3:+ with $3}" "$4" has_hooks "$1" "$2" "${3:-}"; }
# hook_env FILE VAR: the value of VAR in a hook file.
hook_env() { sed -n "s/^$2=//p" "$1" | head -n 1; }

# log_has TEXT: ukeyd's log (this run and before) contains TEXT.
log_has() { grep -qF -- "$1" "$T/ukeyd.log"; }
wait_log() { wait_for "ukeyd log line '$1'" "${2:-$DAEMON_WAIT}" log_has "$1"; }

# --- SoftHSM2 tokens behind ukey's back -----------------------------------

# new_token LABEL: softhsm2-util creates a token in the free slot (PINs from
# variables, on softhsm2-util's command line only: never ukey's). Sets
# TOKEN_SERIAL.
TEST_SO_PIN=So-9q4Zk2Lw
TEST_USER_PIN=Us-7m3Xp8Rv
new_token() {
    local out
    out=$(softhsm2-util --init-token --free --label "$1" --so-pin "$TEST_SO_PIN" --pin "$TEST_USER_PIN" 2>&1) \
        || { show softhsm2-util "$out"; fail "softhsm2-util --init-token failed"; }
    TOKEN_SERIAL=$(softhsm2-util --show-slots 2>/dev/null \
        | awk -v l="$1" '/Serial number:/{s=$3} /Label:/{sub(/^[ \t]*Label:[ \t]*/,""); sub(/[ \t]+$/,""); if ($0==l) print s}' | tail -n1)
    [[ -n $TOKEN_SERIAL ]] || fail "cannot find the serial of the new token '$1'"
}
delete_token() {
    local out
    out=$(softhsm2-util --delete-token --token "$1" 2>&1) || { show softhsm2-util "$out"; fail "softhsm2-util --delete-token failed"; }
}

# rss_kb PID / hwm_kb PID: VmRSS / VmHWM in kB.
rss_kb() { awk '/^VmRSS:/{print $2}' "/proc/$1/status"; }
hwm_kb() { awk '/^VmHWM:/{print $2}' "/proc/$1/status"; }

# check_no_pin_in_logs: no test PIN in ukeyd's log, the watchers' output
# nor the hook files.
check_no_pin_in_logs() {
    local p
    for p in "$TEST_SO_PIN" "$TEST_USER_PIN" "${PINS[@]}"; do
        if grep -rqF -- "$p" "$T/ukeyd.log" "$T"/watch.* "$T/hooks" "$T/transcript" 2>/dev/null; then
            fail "a PIN appears in ukeyd's log, a watcher's output or a hook's environment"
        fi
    done
}
