#!/usr/bin/env bash
# daemon.backend_events: a backend that can block in C_WaitForSlotEvent
# drives ukeyd's rescans by itself. The test fake card (tests/backends)
# reports a slot event for each line written to its FIFO, like a card
# module whose reader saw a change. With the fallback rescan off
# (rescan_interval = 0), only that event can make ukeyd see that the card's
# user PIN got locked meanwhile (by "another process": its state file).
# SoftHSM2, which cannot block, is reported as left to rescans.
. "$(dirname "$0")/lib.sh"
: "${FAKECARD_MODULE:?FAKECARD_MODULE must name the fake card test module}"
need mkfifo

DAEMON_RESCAN=0
daemon_setup "
[[backend]]
name = \"card\"
module = \"$FAKECARD_MODULE\"
pin_counter = \"token\""
export FAKECARD_STATE=$T/card.state FAKECARD_EVENTS=$T/card.events
mkfifo -m 0600 "$FAKECARD_EVENTS"

daemon_start
watch_start w
# poke: one slot event; the waiter must open the FIFO (a bound for a waiter
# that never does, not for its speed).
poke() { timeout "$DAEMON_WAIT" sh -c 'echo change >"$1"' _ "$FAKECARD_EVENTS" || fail "the card's waiter did not read its event FIFO"; }

step "At start: the card is a Key; its waiter runs, SoftHSM2's is left to rescans"
# What status shows once SoftHSM2's waiter has given up and the first scan
# is over (daemon_start returns as soon as ukeyd answers, before either).
wait_log "backend 'softhsm' cannot wait for slot events"
wait_first_scan
status_json
jeq "$ST" '[.status.keys[] | select(.backend == "card") | .label]' '["fakecard"]' "the card's Key"
jeq "$ST" '.status.scan.backends_waiting_for_events' '["card"]' "backends waiting for events"
scans=$(jr "$ST" '.status.scan.count')

step "The card's user PIN is locked behind the daemon's back: nothing happens without an event"
printf 'fakecard 1 user_left=0 so_left=3 user_pin=card-user-2468 so_pin=card-so-13579\n' >"$FAKECARD_STATE"
sleep 1.5
expect_count w '.event == "pin-locked"' 0 "pin-locked before any slot event"
status_json
jeq "$ST" '.status.scan.count' "$scans" "scans without an event"

step "The card reports a slot event: ukeyd rescans and announces the lock once"
poke
wait_events w '.event == "pin-locked"' 1 "$DAEMON_WAIT"
ev=$(events w '.event == "pin-locked"')
jeq "$ev" '.key.label' '"fakecard"' "pin-locked Key"
jeq "$ev" '.which' '"user"' "pin-locked which"
# Another event: its rescan (waited for) finds the card still locked; then
# a moment for a repeat to reach the watcher (a sleep before a negative check).
status_json
scans=$(jr "$ST" '.status.scan.count')
poke
wait_for "the rescan after the second event" "$DAEMON_WAIT" scanned_at_least $((scans + 1))
sleep 1
expect_count w '.event == "pin-locked"' 1 "pin-locked after another event"

step "The waiter survives being killed: ukeyd restarts it"
wpid=$(pgrep -f -- "--wait-backend $FAKECARD_MODULE" | head -n1)
[[ -n $wpid ]] || fail "no waiter process for the card"
kill -KILL "$wpid"
wait_log "slot-event waiter of backend 'card' ended"
wait_for "a new waiter" "$DAEMON_WAIT" eval '[[ -n $(pgrep -f -- "--wait-backend $FAKECARD_MODULE") && $(pgrep -f -- "--wait-backend $FAKECARD_MODULE") != "$wpid" ]]'
printf 'fakecard 1 user_left=3 so_left=3 user_pin=card-user-2468 so_pin=card-so-13579\n' >"$FAKECARD_STATE"
poke
wait_for "the unlocked card rescanned" "$DAEMON_WAIT" eval '[[ $("$UKEY" --json status --socket "$SOCK" | jq -r ".status.keys[] | select(.backend == \"card\") | .user_pin.locked") == false ]]'

watch_stop w
daemon_stop
step "The waiter children end with the daemon"
wait_for "no waiter left" "$DAEMON_WAIT" eval '! pgrep -f -- "--wait-backend $FAKECARD_MODULE" >/dev/null'
finish
