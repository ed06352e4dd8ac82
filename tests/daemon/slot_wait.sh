#!/usr/bin/env bash
# daemon.slot_wait: C_WaitForSlotEvent through libukey-pkcs11.so while ukeyd
# runs. A blocking call in one thread (which subscribes to the daemon) and
# CKF_DONT_BLOCK polling in another both wake when another process creates a
# SoftHSM2 token, and return the slot ID that the daemon's `list` shows for
# the new Key. C_Finalize then wakes a blocked caller with
# CKR_CRYPTOKI_NOT_INITIALIZED (0x190).
. "$(dirname "$0")/lib.sh"
SW=${DAEMON_BIN_DIR:?DAEMON_BIN_DIR must name the folder of slotwait}/slotwait
[[ -x $SW ]] || fail "$SW not built"

DAEMON_RESCAN=0.5
daemon_setup
BOUND=$(awk -v i="$DAEMON_RESCAN" 'BEGIN{print 3*i+2}')
daemon_start
watch_start w

step "slotwait: a blocking and a polling C_WaitForSlotEvent"
ukc "$SW" "$UKEY_MODULE" 15000 >"$T/sw.out" 2>"$T/sw.err" &
SWPID=$!
ready() { grep -q '^ready$' "$T/sw.err"; }
wait_until 10 ready || { cat "$T/sw.err" >&2; fail "slotwait did not start"; }
# The blocking call subscribes to ukeyd: one more subscriber than the watcher.
wait_until 5 subscribers_at_least 2 || fail "libukey-pkcs11.so's blocking C_WaitForSlotEvent did not subscribe to ukeyd"
alive "$SWPID" || { cat "$T/sw.err" >&2; fail "slotwait ended before any token was made"; }

step "another process makes a token"
t0=$(now_ms)
new_token Alice
rc=0
wait_until 15 eval "! alive $SWPID" || true
wait "$SWPID" || rc=$?
cat "$T/sw.err" >&2
[[ $rc -eq 0 ]] || { cat "$T/sw.out" >&2; fail "slotwait exited with $rc"; }
log "slotwait: $(tr '\n' ';' <"$T/sw.out") ($(($(now_ms) - t0)) ms after the token was made)"

uk --json list
expect_rc 0
wait_events w '.event == "key-inserted"' 1 "$BOUND"
SLOT=$(jr "$(events w '.event == "key-inserted"')" '.key.slot_id')
uk status --socket "$SOCK" --json
jeq "$OUT" "[.keys[] | select(.label == \"Alice\") | .slot_id]" "[$SLOT]" "the daemon's list"
read -r what slot ms < <(grep '^blocking ' "$T/sw.out")
assert_eq "$slot" "$SLOT" "slot from the blocking C_WaitForSlotEvent"
awk -v m="$ms" -v b="$BOUND" 'BEGIN{exit !(m <= b*1000)}' || fail "the blocking call woke after $ms ms (bound ${BOUND}s)"
read -r what slot ms < <(grep '^dontblock ' "$T/sw.out")
assert_eq "$slot" "$SLOT" "slot from C_WaitForSlotEvent(CKF_DONT_BLOCK)"
read -r what rv ms < <(grep '^finalize ' "$T/sw.out")
assert_eq "$rv" 0x190 "C_Finalize woke the waiter with"
((ms < 1000)) || fail "C_Finalize took $ms ms to wake the waiter"

watch_stop w
daemon_stop 1
finish
