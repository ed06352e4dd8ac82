#!/usr/bin/env bash
# tests/pcsc/smoke.sh: proves the pcsc harness against a real pcscd + vpcd.
#
# A probe (probe.cpp: SCardGetStatusChange on all readers and on
# \\?PnP?\Notification) runs against a private pcscd; the test checks that
#   - the vpcd readers appear, with no card in them (and no card to talk to);
#   - card in  -> "card-inserted", card out -> "card-removed" (several cycles,
#     latencies measured from card_insert/card_remove to the probe's event);
#   - the vcard answers APDUs through pcscd (SELECT 6A82, others 6D00);
#   - a second slot works independently;
#   - pcscd SIGKILLed -> "pcscd-gone"; restarted -> the probe reconnects by
#     itself and sees the reader and the card (still in) again;
#   - pcscd stopped gracefully (SIGTERM) and restarted -> the same;
#   - SIGTERM to the probe -> SCardCancel wakes its blocked wait, exit 0.
#
# Usage: PCSC_BIN_DIR=<dir with vcard and probe> bash tests/pcsc/smoke.sh
# Without PCSC_BIN_DIR it builds them first (cmake -S tests/pcsc, standalone).
# PCSC_SMOKE_CYCLES (default 5) insert/remove cycles. Exit 77 = skipped.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=harness.sh
. "$HERE/harness.sh"
TEST_NAME=pcsc-smoke
pcsc_test_messages "probe events"


CYCLES=${PCSC_SMOKE_CYCLES:-5}

if [[ -z ${PCSC_BIN_DIR:-} ]]; then
    command -v cmake >/dev/null || pcsc__skip "cmake not installed and PCSC_BIN_DIR not set"
    PCSC_BIN_DIR=$(mktemp -d "${TMPDIR:-/tmp}/ukey-pcsc-build.XXXXXX")
    build_dir=$PCSC_BIN_DIR
    log "building vcard and probe in $build_dir"
    gen=(); command -v ninja >/dev/null && gen=(-G Ninja)
    { cmake -S "$HERE" -B "$build_dir" "${gen[@]}" && cmake --build "$build_dir"; } \
        >"$build_dir.log" 2>&1 || { cat "$build_dir.log" >&2; fail "build failed"; }
    rm -f "$build_dir.log"
fi

R0=$(pcsc_reader_name 0)
R1=$(pcsc_reader_name 1)

pcsc_start
if [[ -n ${build_dir:-} ]]; then
    # Chained after the harness's cleanup.
    trap 'rc=$?; trap - EXIT; pcsc_cleanup $rc; rm -rf -- "$build_dir"; exit $rc' EXIT
fi

EV=$PCSC_DIR/probe.events
PROBE_PID=

# wait_event REGEX FROM: waits (bounded) for it, prints the line.
wait_event() { ev_wait "$PROBE_PID" probe "$1" "$2"; }

step "probe up, reader present, no card"
"$PCSC_BIN_DIR/probe" --timeout-ms 5000 >"$EV" 2>"$PCSC_DIR/probe.err" &
PROBE_PID=$!
pcsc_track "$PROBE_PID" probe
wait_event "^[0-9]+ pcscd-up\$" 0 >/dev/null
wait_event "^[0-9]+ reader-added $(re_name "$R0")\$" 0 >/dev/null
wait_event "^[0-9]+ reader-added $(re_name "$R1")\$" 0 >/dev/null
list=$("$PCSC_BIN_DIR/probe" --list)
log "probe --list with no card: $(tr '\n' ';' <<<"$list")"
grep -qx "reader $R0 empty" <<<"$list" || fail "$R0 not listed as empty"
grep -qx "reader $R1 empty" <<<"$list" || fail "$R1 not listed as empty"
if out=$("$PCSC_BIN_DIR/probe" --transmit "$R0" 00A4040000 2>&1); then
    fail "SCardConnect to an empty vpcd reader succeeded: $out"
fi
grep -q 0x8010000C <<<"$out" || fail "connect to empty reader: expected SCARD_E_NO_SMARTCARD, got: $out"
log "connect to the empty reader: $out"
[[ -z $(ev_find "card-inserted" 0) ]] || fail "card-inserted without a card"

step "card in / card out, $CYCLES cycles"
ins_lat=() rem_lat=() det_lat=()
for ((i = 1; i <= CYCLES; i++)); do
    timed_card in 0
    ins_lat+=("$EV_LATENCY")
    det_lat+=($(( $(ev_ms "$EV_LINE") - $(<"$PCSC_DIR/vcard0.ready") )))
    if [[ $i -eq 1 ]]; then
        out=$("$PCSC_BIN_DIR/probe" --transmit "$R0" 00A4040007A0000000031010) \
            || fail "transmit SELECT failed"
        [[ $out == *"response 6A82" ]] || fail "SELECT answered '$out', expected 6A82"
        out=$("$PCSC_BIN_DIR/probe" --transmit "$R0" 00CA9F7F00) || fail "transmit GET DATA failed"
        [[ $out == *"response 6D00" ]] || fail "GET DATA answered '$out', expected 6D00"
        log "APDUs through pcscd: SELECT -> 6A82, GET DATA -> 6D00 ($out)"
    fi
    timed_card out 0
    rem_lat+=("$EV_LATENCY")
done
log "insert latency ms (card_insert -> card-inserted): ${ins_lat[*]}"
log "  of which after the vcard was connected:         ${det_lat[*]}"
log "remove latency ms (card_remove -> card-removed):  ${rem_lat[*]}"

step "second slot"
m=$(ev_mark)
card_insert 1
wait_event "^[0-9]+ card-inserted $(re_name "$R1") atr=" "$m" >/dev/null
pcsc_wait_card 0 empty || fail "$R0 not empty while the card is in $R1"
m=$(ev_mark)
card_remove 1
wait_event "^[0-9]+ card-removed $(re_name "$R1")\$" "$m" >/dev/null
[[ -z $(ev_find "card-(inserted|removed) $(re_name "$R0")" "$m") ]] || fail "slot 0 saw an event"

restart_check() {   # restart_check kill|stop
    local how=$1 m t0 line gone_ms up
    m=$(ev_mark)
    card_insert 0
    wait_event "^[0-9]+ card-inserted $(re_name "$R0") atr=" "$m" >/dev/null
    m=$(ev_mark)
    t0=$(pcsc_now_ms)
    if [[ $how == kill ]]; then pcsc_kill; else pcsc_stop; fi
    line=$(wait_event "^[0-9]+ pcscd-gone rv=" "$m")
    gone_ms=$(( $(ev_ms "$line") - t0 ))
    log "pcscd $how -> probe: $line (+${gone_ms} ms)"
    wait_event "^[0-9]+ card-removed $(re_name "$R0")\$" "$m" >/dev/null
    wait_event "^[0-9]+ reader-removed $(re_name "$R0")\$" "$m" >/dev/null
    m=$(ev_mark)
    t0=$(pcsc_now_ms)
    pcsc_relaunch
    line=$(wait_event "^[0-9]+ pcscd-up\$" "$m")
    up=$(( $(ev_ms "$line") - t0 ))
    wait_event "^[0-9]+ reader-added $(re_name "$R0")\$" "$m" >/dev/null
    line=$(wait_event "^[0-9]+ card-inserted $(re_name "$R0") atr=" "$m")
    log "pcscd started again -> probe: pcscd-up +${up} ms, card (still in) seen +$(( $(ev_ms "$line") - t0 )) ms"
    m=$(ev_mark)
    card_remove 0
    wait_event "^[0-9]+ card-removed $(re_name "$R0")\$" "$m" >/dev/null
    # (Once in ~100 restarts a card that stays in across a pcscd restart was
    # seen flapping: inserted, removed ~30 ms later, inserted again ~0.5 s
    # later. So only pcscd's final answer counts here.)
    pcsc_wait_card 0 empty || fail "$R0 not empty after card_remove"
}

step "pcscd killed (SIGKILL) and started again"
restart_check kill
step "pcscd stopped (SIGTERM) and started again"
restart_check stop

step "probe stopped: SIGTERM -> SCardCancel"
m=$(ev_mark)
log "SIGTERM to the probe (events so far: $m)"
kill -TERM "$PROBE_PID"
line=$(wait_event "^[0-9]+ cancelled latency-ms=" "$m")
pcsc_wait_until "$PCSC_WAIT" pcsc__dead "$PROBE_PID" || fail "probe did not exit"
rc=0; wait "$PROBE_PID" || rc=$?
unset "PCSC_TRACKED[$PROBE_PID]"
[[ $rc -eq 0 ]] || fail "probe exited with $rc"
log "probe: $line"
if [[ -s $PCSC_DIR/probe.err ]]; then
    cat "$PCSC_DIR/probe.err" >&2
    fail "probe wrote to stderr"
fi

stats() {   # stats N... -> "min/avg/max"
    local min=$1 max=$1 sum=0 n=0 v
    for v; do (( v < min )) && min=$v; (( v > max )) && max=$v; sum=$((sum + v)); n=$((n + 1)); done
    printf '%s/%s/%s' "$min" "$((sum / n))" "$max"
}
printf 'RESULT insert_ms(min/avg/max)=%s detect_after_connect_ms=%s remove_ms=%s cycles=%s\n' \
    "$(stats "${ins_lat[@]}")" "$(stats "${det_lat[@]}")" "$(stats "${rem_lat[@]}")" "$CYCLES"
log PASS
