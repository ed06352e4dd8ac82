#!/usr/bin/env bash
# tests/pcsc/watch.sh: ukeyd's PcscWatch (tools/ukeyd/pcsc_watch.cpp), run by
# watch_driver, against a private pcscd + vpcd (harness.sh). Checks:
#   - first connect: up, reader-added for both readers, no card;
#   - card in -> card-inserted (reader, ATR); card out -> card-removed;
#   - idle: (almost) no CPU while blocked in SCardGetStatusChange;
#   - pcscd SIGKILLed -> one down (0x80100013) before reader-removed of both
#     readers; no CPU while waiting for pcscd; relaunched -> up, both readers,
#     and the card that stayed in is card-inserted again;
#   - the same with pcscd stopped gracefully (SIGTERM);
#   - SIGTERM to the driver while it waits in SCardGetStatusChange -> stop()
#     ends it (SCardCancel), exit 0, nothing on stderr;
#   - driver started while pcscd is not running -> down 0x8010001D
#     (SCARD_E_NO_SERVICE) and no up; pcscd started -> up woken by inotify
#     (not by the back-off, grown to seconds by then) and the readers;
#   - socket folder missing at start: its nearest existing parent is watched,
#     the folders and the socket appear -> up woken by inotify;
#   - SIGTERM while it waits for pcscd -> stop() ends it (wake pipe);
#   - start()/stop() churn (watch_driver --churn), pcscd up and down: every
#     stop() is seen wherever the thread was, never only when a timer ran out.
#
# Speed is logged, not checked: the driver says *why* it woke (`up
# woken-by=...`) and how its thread saw stop() (`cancelled ... by=...`), which
# a busy machine cannot change. The time bounds left only catch a hang: a
# stop() that takes 5 s (one that nothing wakes waits for ever), a driver
# not gone $PCSC_WAIT s after SIGTERM (ASan's exit included).
#
# Usage: PCSC_BIN_DIR=<dir with vcard and probe> PCSC_WATCH_DRIVER=<watch_driver>
#        bash tests/pcsc/watch.sh          (ctest: pcsc.watch). Exit 77 = skipped.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=harness.sh
. "$HERE/harness.sh"
TEST_NAME=pcsc-watch
pcsc_test_messages "driver events"


[[ -n ${PCSC_WATCH_DRIVER:-} && -x $PCSC_WATCH_DRIVER ]] \
    || pcsc__die "PCSC_WATCH_DRIVER must name the built watch_driver"
# Idle CPU budget in clock ticks (utime+stime) for IDLE_S seconds.
IDLE_S=3
IDLE_MAX_TICKS=${PCSC_WATCH_IDLE_TICKS:-5}

R0=$(pcsc_reader_name 0)
R1=$(pcsc_reader_name 1)

pcsc_start

EV=
DRV=
# start_driver NAME: a driver writing to $PCSC_DIR/NAME.events.
start_driver() {
    EV=$PCSC_DIR/$1.events
    "$PCSC_WATCH_DRIVER" >"$EV" 2>"$EV.err" &
    DRV=$!
    pcsc_track "$DRV" "$1"
}

ev_count() { awk -v from="$2" -v re="$1" 'NR > from && $0 ~ re { n++ } END { print n + 0 }' "$EV"; }
ev_line() { awk -v from="$2" -v re="$1" 'NR > from && $0 ~ re { print NR; exit }' "$EV"; }
wait_event() { ev_wait "$DRV" driver "$1" "$2"; }   # wait_event REGEX FROM: prints the line
T='^[0-9]+ '
UP="${T}up( |\$)"   # "up woken-by=..."

cpu_ticks() {   # utime+stime of all threads of PID, in clock ticks
    local stat rest
    stat=$(<"/proc/$1/stat") || fail "process $1 is gone"
    rest=${stat##*) }
    # shellcheck disable=SC2206
    local f=($rest)
    echo $(( f[11] + f[12] ))
}
assert_idle() {   # assert_idle WHAT
    local a b
    a=$(cpu_ticks "$DRV")
    sleep "$IDLE_S"
    b=$(cpu_ticks "$DRV")
    log "idle CPU $1: $((b - a)) ticks in ${IDLE_S}s (limit $IDLE_MAX_TICKS)"
    (( b - a <= IDLE_MAX_TICKS )) || fail "driver busy while idle ($1): $((b - a)) ticks in ${IDLE_S}s"
}

# stop_driver: SIGTERM; the driver's stop() must have been woken (SCardCancel
# or the wake pipe: by=cancel|wake, or by=flag when it was between waits),
# never have found the request only when a timer ran out (by=timer: stop()
# did not wake it), and must return within STOP_BOUND_MS: a stop() nothing
# wakes waits for ever, a busy machine delays one by milliseconds. The
# process then has $PCSC_WAIT s to exit 0 (ASan/LSan's exit is slow), with a
# quiet stderr.
STOP_BOUND_MS=5000
stop_driver() {
    local m t0 rc=0 line waited ms
    m=$(ev_mark)
    t0=$(pcsc_now_ms)
    kill -TERM "$DRV"
    pcsc_wait_until "$PCSC_WAIT" pcsc__dead "$DRV" || fail "driver still running ${PCSC_WAIT} s after SIGTERM"
    waited=$(( $(pcsc_now_ms) - t0 ))
    wait "$DRV" || rc=$?
    unset "PCSC_TRACKED[$DRV]"
    [[ $rc -eq 0 ]] || fail "driver exited with $rc after SIGTERM"
    line=$(ev_find "${T}cancelled latency-ms=" "$m")
    [[ -n $line ]] || fail "driver printed no 'cancelled' line"
    log "SIGTERM -> driver gone after ${waited} ms; driver: $line"
    [[ $line =~ \ latency-ms=([0-9]+)\ by=(cancel|wake|flag)$ ]] \
        || fail "stop() was not woken by SCardCancel or the wake pipe: $line"
    ms=${BASH_REMATCH[1]}
    (( ms < STOP_BOUND_MS )) || fail "stop() took ${ms} ms (bound ${STOP_BOUND_MS} ms): $line"
    [[ ! -s $EV.err ]] || fail "driver wrote to stderr"
}

step "first connect: up, both readers, no card"
start_driver drv1
wait_event "$UP" 0 >/dev/null
a=$(ev_line "$UP" 0)
b=$(wait_event "${T}reader-added $(re_name "$R0")\$" 0 >/dev/null; ev_line "${T}reader-added $(re_name "$R0")\$" 0)
wait_event "${T}reader-added $(re_name "$R1")\$" 0 >/dev/null
(( a < b )) || fail "reader-added before up"
sleep 0.3
[[ -z $(ev_find "card-inserted|down" 0) ]] || fail "card-inserted or down without cause"
assert_idle "pcscd up, no card"

step "card in / card out"
ins=() rem=()
for i in 1 2; do
    timed_card in 0
    ins+=("$EV_LATENCY")
    timed_card out 0
    rem+=("$EV_LATENCY")
done
log "card_insert -> card-inserted ms: ${ins[*]}; card_remove -> card-removed ms: ${rem[*]}"
m=$(ev_mark)
card_insert 1
wait_event "${T}card-inserted $(re_name "$R1") atr=3B80800101\$" "$m" >/dev/null
card_remove 1
wait_event "${T}card-removed $(re_name "$R1")\$" "$m" >/dev/null
[[ -z $(ev_find "card-.* $(re_name "$R0")" "$m") ]] || fail "slot 0 saw an event"

restart_check() {   # restart_check kill|stop EXPECTED-CODE-REGEX
    local how=$1 code=$2 m t0 line d r0 r1 up
    m=$(ev_mark)
    t0=$(pcsc_now_ms)
    if [[ $how == kill ]]; then pcsc_kill; else pcsc_stop; fi
    line=$(wait_event "${T}down code=" "$m")
    log "pcscd $how -> +$(( $(ev_ms "$line") - t0 )) ms: $line"
    [[ $line =~ \ code=($code)\  ]] || fail "down with the wrong code (expected $code)"
    wait_event "${T}reader-removed $(re_name "$R0")\$" "$m" >/dev/null
    wait_event "${T}reader-removed $(re_name "$R1")\$" "$m" >/dev/null
    d=$(ev_line "${T}down " "$m")
    r0=$(ev_line "${T}reader-removed $(re_name "$R0")\$" "$m")
    r1=$(ev_line "${T}reader-removed $(re_name "$R1")\$" "$m")
    (( d < r0 && d < r1 )) || fail "reader-removed before down"
    if [[ $how == kill ]]; then assert_idle "waiting for pcscd"; else sleep 1; fi
    [[ $(ev_count "${T}down " "$m") -eq 1 ]] || fail "down reported more than once"
    [[ -z $(ev_find "$UP" "$m") ]] || fail "up while pcscd is down"
    m=$(ev_mark)
    t0=$(pcsc_now_ms)
    pcsc_relaunch
    line=$(wait_event "$UP" "$m")
    up=$(( $(ev_ms "$line") - t0 ))
    log "pcscd relaunched -> +${up} ms: ${line#* }"
    wait_event "${T}reader-added $(re_name "$R0")\$" "$m" >/dev/null
    wait_event "${T}reader-added $(re_name "$R1")\$" "$m" >/dev/null
    line=$(wait_event "${T}card-inserted $(re_name "$R0") atr=3B80800101\$" "$m")
    log "pcscd relaunched -> card (still in) +$(( $(ev_ms "$line") - t0 )) ms"
}

step "pcscd killed (SIGKILL) with a card in, relaunched"
m=$(ev_mark)
card_insert 0
wait_event "${T}card-inserted $(re_name "$R0") atr=" "$m" >/dev/null
restart_check kill 0x80100013
step "pcscd stopped (SIGTERM) with a card in, relaunched"
# (SIGTERM was always seen as a broken connection, 0x80100013; a stop
# announced as SCARD_E_SERVICE_STOPPED would be as right.)
restart_check stop '0x80100013|0x8010001E'
m=$(ev_mark)
card_remove 0
wait_event "${T}card-removed $(re_name "$R0")\$" "$m" >/dev/null
pcsc_wait_card 0 empty || fail "$R0 not empty after card_remove"

step "SIGTERM while blocked in SCardGetStatusChange"
stop_driver

churn() {   # churn WHAT: start()/stop() in every phase of the thread
    local out rc=0
    # 120 s only stops a hung driver (200 cycles take ~3 s here).
    out=$(timeout -k 5 120 "$PCSC_WATCH_DRIVER" --churn "${PCSC_WATCH_CHURN:-200}" 2>&1) || rc=$?
    log "start/stop churn, $1: $out"
    [[ $rc -eq 0 && $out == "churn cycles="* ]] || fail "churn ($1) failed (rc $rc): $out"
}
step "start/stop churn with pcscd up"
churn "pcscd up"

step "driver started while pcscd is not running"
pcsc_stop
start_driver drv2
line=$(wait_event "${T}down code=" 0)
log "$line"
[[ $line == *" code=0x8010001D "* ]] || fail "expected SCARD_E_NO_SERVICE (0x8010001D)"
[[ $line == *"systemctl start pcscd.socket"* ]] || fail "the down message does not say how to start pcscd"
assert_idle "pcscd never seen"
churn "pcscd down"
[[ -z $(ev_find "${T}(up|reader-)" 0) ]] || fail "up or reader events while pcscd is not running"
[[ $(ev_count "${T}down " 0) -eq 1 ]] || fail "down reported more than once"
m=$(ev_mark)
t0=$(pcsc_now_ms)
pcsc_relaunch
line=$(wait_event "$UP" "$m")
up=$(( $(ev_ms "$line") - t0 ))
log "pcscd started -> +${up} ms (pcscd's start-up included, after ${IDLE_S}+ s of back-off): ${line#* }"
# The back-off (pcsc_watch.cpp: 250 ms doubling to 5 s) has grown to 2 s or
# more by now (over 1.75 s since the down), and only an inotify wake-up sets
# it back to 250 ms. So `up` must come from inotify, or from one of the
# short steps after that reset (the socket existed a moment before pcscd
# listened on it), never from a grown step.
[[ $line =~ \ woken-by=inotify$ || $line =~ \ woken-by=back-off\ backoff-ms=(250|500|1000)$ ]] \
    || fail "pcscd started, but up came from the grown back-off, not inotify: is the inotify wake-up broken? $line"
wait_event "${T}reader-added $(re_name "$R0")\$" "$m" >/dev/null
wait_event "${T}reader-added $(re_name "$R1")\$" "$m" >/dev/null

step "socket folder missing: its nearest existing parent is watched"
# PCSCLITE_CSOCK_NAME under folders that do not exist yet; they are made
# once the back-off has grown, and the socket appears as a symlink to the
# real one: only inotify, re-aimed folder by folder, makes "up" quick.
alt=$PCSC_DIR/alt/a/b/pcscd.comm
mkdir "$PCSC_DIR/alt"
stop_driver
PCSCLITE_CSOCK_NAME=$alt start_driver drv3
line=$(wait_event "${T}down code=" 0)
[[ $line == *" code=0x8010001D "* ]] || fail "expected SCARD_E_NO_SERVICE (0x8010001D): $line"
sleep 2
mkdir -p "$PCSC_DIR/alt/a/b"
t0=$(pcsc_now_ms)
ln -s "$PCSCLITE_CSOCK_NAME" "$alt"
line=$(wait_event "$UP" 0)
up=$(( $(ev_ms "$line") - t0 ))
log "socket made -> +${up} ms: ${line#* }"
# Each folder made wakes the driver (inotify), which re-aims its watch one
# level down, so the socket's creation wakes it too. A folder missed while
# re-aiming leaves only the back-off (its first step, reset by the first
# folder's wake-up) to find the socket: woken-by=back-off (seen once in 5
# runs before arm_inotify looked twice).
[[ $line =~ \ woken-by=inotify$ ]] || fail "socket path made, but up was not woken by inotify: $line"
wait_event "${T}reader-added $(re_name "$R1")\$" 0 >/dev/null

step "SIGTERM while waiting for pcscd"
m=$(ev_mark)
pcsc_kill
wait_event "${T}down code=0x80100013 " "$m" >/dev/null
sleep 0.5
stop_driver

log PASS
