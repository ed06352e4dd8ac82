#!/usr/bin/env bash
# daemon.slot_wait: C_WaitForSlotEvent through libukey-pkcs11.so while ukeyd
# runs. A blocking call in one thread (which subscribes to the daemon) and
# CKF_DONT_BLOCK polling in another both wake when another process creates a
# SoftHSM2 token, and return the slot ID that the daemon's `list` shows for
# the new Key, a slot the application can then use (its SoftHSM2 shows the
# other process's token once ukey has initialised it again). C_Finalize then wakes a blocked caller with
# CKR_CRYPTOKI_NOT_INITIALIZED (0x190). The times (wake-up after the token
# was made, C_Finalize's wake-up) are logged; their bounds (BOUND, 10 s)
# only catch an event never seen or a waiter never woken.
. "$(dirname "$0")/lib.sh"
SW=$(daemon_helper slotwait)

DAEMON_RESCAN=0.5
daemon_setup
BOUND=$(scan_bound 20)   # a bound on waits that end when the event comes
daemon_start
watch_start w

# run MODE LABEL N: slotwait in MODE (block|poll), then another process makes
# token LABEL (the Nth Key); slotwait must return its slot ID as the daemon
# lists it; C_Finalize must wake a blocked caller.
# slotwait's own limit for the event (60 s from "ready") and the waits here
# only end a test whose event never comes: each ends as soon as it holds.
run() {
    local mode=$1 label=$2 n=$3 subs rc=0 t0 what slot ms at rv woke
    step "$mode: C_WaitForSlotEvent($([[ $mode == block ]] && echo 0 || echo CKF_DONT_BLOCK)), then a token appears"
    subs=$(subscribers)
    rm -f "$T/sw.out" "$T/sw.err"
    ukc "$SW" "$UKEY_MODULE" "$mode" 60000 >"$T/sw.out" 2>"$T/sw.err" &
    SWPID=$!
    local t_start
    t_start=$(now_ms)
    if ! wait_until "$DAEMON_WAIT" ready; then
        cat "$T/sw.err" >&2
        ps -o pid,stat,wchan:30,etime,args -p "$SWPID" >&2 || true
        cat "/proc/$SWPID/task/"*/stack 2>/dev/null | head -40 >&2 || true
        fail "slotwait did not start within $DAEMON_WAIT s"
    fi
    log "slotwait ready after $(($(now_ms) - t_start)) ms"
    # Both subscribe to ukeyd (a CKF_DONT_BLOCK call as well): one more
    # subscriber, before the token is made, or its event would be missed.
    wait_until "$DAEMON_WAIT" subscribers_at_least $((subs + 1)) \
        || fail "libukey-pkcs11.so's C_WaitForSlotEvent ($mode) did not subscribe to ukeyd"
    alive "$SWPID" || { cat "$T/sw.err" >&2; fail "slotwait ended before the token was made"; }
    t0=$(now_ms)
    new_token "$label"
    if ! wait_until 120 eval "! alive $SWPID"; then
        cat "$T/sw.out" "$T/sw.err" >&2
        kill -KILL "$SWPID" 2>/dev/null || true
        fail "slotwait $mode still runs 120 s after the token was made (its own limits: 60 s for the event, 30 s for C_Finalize)"
    fi
    wait "$SWPID" || rc=$?
    if [[ $rc -ne 0 ]]; then
        cat "$T/sw.out" "$T/sw.err" >&2
        [[ $mode == poll ]] && log "hint: with SoftHSM2 a process's own slot list never shows a token another process made; with ukeyd running, CKF_DONT_BLOCK has to learn it from the daemon"
        fail "slotwait $mode exited with $rc"
    fi
    log "slotwait $mode: $(tr '\n' ';' <"$T/sw.out") ($(($(now_ms) - t0)) ms after the token was made)"
    wait_events w '.event == "key-inserted"' "$n" "$BOUND"
    SLOT=$(jr "$(events w ".event == \"key-inserted\" and .key.label == \"$label\"")" '.key.slot_id')
    uk status --socket "$SOCK" --json
    jeq "$OUT" "[.keys[] | select(.label == \"$label\") | .slot_id]" "[$SLOT]" "the daemon's list"
    read -r what slot ms at < <(grep "^$mode " "$T/sw.out")
    assert_eq "$slot" "$SLOT" "slot from C_WaitForSlotEvent ($mode)"
    # ... and usable there (C_GetTokenInfo, C_OpenSession): its backend was
    # initialised again to show another process's token.
    assert_eq "$(grep '^token ' "$T/sw.out")" "token $label" "the token on the event's slot ($mode)"
    # Timed from the start of softhsm2-util --init-token (the token appears
    # during it), not from "ready".
    woke=$((at - t0))
    log "C_WaitForSlotEvent ($mode) returned ${woke} ms after softhsm2-util started making the token (bound ${BOUND} s)"
    awk -v m="$woke" -v b="$BOUND" 'BEGIN{exit !(m <= b*1000)}' || fail "C_WaitForSlotEvent ($mode) woke ${woke} ms after the token was made (bound ${BOUND}s)"
    read -r what rv ms < <(grep '^finalize ' "$T/sw.out")
    assert_eq "$rv" 0x190 "C_Finalize woke the waiter with"
    log "C_Finalize woke the waiter in $ms ms"
    # At once in fact; 10 s only tells a waiter never woken from a busy machine.
    ((ms < 10000)) || fail "C_Finalize took $ms ms to wake the waiter"
}
# (1, never grep's 2 for a file not made yet: 2 would end wait_until at once)
ready() { grep -qs '^ready$' "$T/sw.err" || return 1; }
run block Alice 1
# soft: a failure is recorded, the checks after it still run.
soft run poll Bob 2
# Both ended cleanly: their subscriptions are gone.
wait_for "the module's subscriptions gone" "$DAEMON_WAIT" eval '[[ $(subscribers) == 1 ]]'
wait_events w '.event == "key-inserted"' 2 "$BOUND"

watch_stop w
daemon_stop
finish
