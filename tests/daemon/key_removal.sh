#!/usr/bin/env bash
# daemon.key_removal: a Key deleted by another process while an application
# (keyremoval, through libukey-pkcs11.so) has sessions on it and waits in
# C_WaitForSlotEvent, with ukeyd running. The application's SoftHSM2 never
# notices a deleted token by itself; ukey acts on the daemon's key-removed as
# on a pulled card:
#   1. Alice deleted while sessions are open on Alice and Bob (one backend,
#      so it cannot be initialised again): the event names Alice's slot,
#      which then answers as out; her session is gone, Bob's stays.
#   2. Carol made while Bob's session keeps the backend from being
#      initialised again: the daemon's word is kept (the module logs that it
#      waits); once Bob's session closes, Carol's event comes and her slot is
#      usable; Alice is still out.
#   3. Carol deleted while her session is open and no other: her session is
#      closed, the backend initialised again, the event comes.
#   4. C_Finalize wakes the waiting thread.
# The waits end as soon as their line comes; their bounds (60 s in
# keyremoval, BOUND here) only end a test whose event never comes.
. "$(dirname "$0")/lib.sh"
KR=$(daemon_helper keyremoval)

DAEMON_RESCAN=0.5
daemon_setup
BOUND=$(scan_bound 20)
new_token Alice
new_token Bob
daemon_start
watch_start w

mkfifo "$T/cmd"
subs=$(subscribers) # before keyremoval starts: it subscribes at once
# The module logs at info on its stderr: "not now, sessions are open on it".
UKEY_LOG_LEVEL=info ukc "$KR" "$UKEY_MODULE" Alice Bob <"$T/cmd" >"$T/kr.out" 2>"$T/kr.err" &
KRPID=$!
exec 3>"$T/cmd"   # (test_cleanup kills keyremoval if the test ends early)

has_line() { grep -qE -- "$1" "$T/kr.out"; }
# ask COMMAND LABEL: one command; its answer must be "... ok".
ask() {
    local answer
    echo "$1 $2" >&3
    if ! wait_until 120 has_line "^$1 $2 "; then
        cat "$T/kr.out" "$T/kr.err" >&2
        fail "keyremoval gave no answer to '$1 $2' within 120 s"
    fi
    answer=$(grep -E "^$1 $2 " "$T/kr.out" | tail -n 1)
    log "keyremoval: $answer"
    [[ $answer == "$1 $2 ok" ]] || { cat "$T/kr.err" >&2; fail "$answer"; }
}
waiting_lines() { grep -c "not now, sessions are open on it" "$T/kr.err" || true; }

wait_for "keyremoval ready" "$DAEMON_WAIT" has_line '^ready$'
wait_for "keyremoval's C_WaitForSlotEvent subscribed to ukeyd" "$DAEMON_WAIT" subscribers_at_least $((subs + 1))

step "Alice deleted while sessions are open on Alice and Bob"
delete_token Alice
wait_events w '.event == "key-removed"' 1 "$BOUND"
ask removed Alice

step "Carol made while Bob's session is open: the daemon's word waits"
before=$(waiting_lines)
new_token Carol
wait_events w '.event == "key-inserted" and .key.label == "Carol"' 1 "$BOUND"
wait_for "the module saying it waits for Bob's session" "$BOUND" eval '(( $(waiting_lines) > before ))'
ask close Bob
ask inserted Carol
ask absent Alice

step "Carol deleted while only her session is open"
delete_token Carol
wait_events w '.event == "key-removed"' 2 "$BOUND"
ask removed Carol
uk status --socket "$SOCK" --json
jeq "$OUT" '[.keys[].label]' '["Bob"]' "the daemon's list"

step "C_Finalize"
echo quit >&3
exec 3>&-
wait_until 60 eval '! alive $KRPID' || fail "keyremoval did not end after quit"
rc=0
wait "$KRPID" || rc=$?
cat "$T/kr.out" | sed 's/^/  keyremoval: /' >&2
has_line '^finalize ok$' || { cat "$T/kr.err" >&2; fail "C_Finalize did not end keyremoval's waiting thread cleanly"; }
assert_eq "$rc" 0 "keyremoval's exit code"
grep -q "initialised again" "$T/kr.err" || fail "the module never said it initialised the backend again"

watch_stop w
daemon_stop
finish
