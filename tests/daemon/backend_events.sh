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
poke() { timeout 5 sh -c 'echo change >"$1"' _ "$FAKECARD_EVENTS" || fail "the card's waiter did not read its event FIFO"; }

step "At start: the card is a Key; its waiter runs, SoftHSM2's is left to rescans"
status_json
jeq "$ST" '[.status.keys[] | select(.backend == "card") | .label]' '["fakecard"]' "the card's Key"
jeq "$ST" '.status.scan.backends_waiting_for_events' '["card"]' "backends waiting for events"
wait_log "backend 'softhsm' cannot wait for slot events"
scans=$(jr "$ST" '.status.scan.count')

step "The card's user PIN is locked behind the daemon's back: nothing happens without an event"
printf 'fakecard 1 user_left=0 so_left=3 user_pin=card-user-2468 so_pin=card-so-13579\n' >"$FAKECARD_STATE"
sleep 1.5
expect_count w '.event == "pin-locked"' 0 "pin-locked before any slot event"
status_json
jeq "$ST" '.status.scan.count' "$scans" "scans without an event"

step "The card reports a slot event: ukeyd rescans and announces the lock once"
poke
wait_events w '.event == "pin-locked"' 1 5
ev=$(events w '.event == "pin-locked"')
jeq "$ev" '.key.label' '"fakecard"' "pin-locked Key"
jeq "$ev" '.which' '"user"' "pin-locked which"
poke
sleep 1
expect_count w '.event == "pin-locked"' 1 "pin-locked after another event"

step "The waiter survives being killed: ukeyd restarts it"
wpid=$(pgrep -f -- "--wait-backend $FAKECARD_MODULE" | head -n1)
[[ -n $wpid ]] || fail "no waiter process for the card"
kill -KILL "$wpid"
wait_log "slot-event waiter of backend 'card' ended"
wait_for "a new waiter" 5 eval '[[ -n $(pgrep -f -- "--wait-backend $FAKECARD_MODULE") && $(pgrep -f -- "--wait-backend $FAKECARD_MODULE") != "$wpid" ]]'
printf 'fakecard 1 user_left=3 so_left=3 user_pin=card-user-2468 so_pin=card-so-13579\n' >"$FAKECARD_STATE"
poke
wait_for "the unlocked card rescanned" 5 eval '[[ $("$UKEY" --json status --socket "$SOCK" | jq -r ".status.keys[] | select(.backend == \"card\") | .user_pin.locked") == false ]]'

watch_stop w
daemon_stop 1
step "The waiter children end with the daemon"
wait_for "no waiter left" 5 eval '! pgrep -f -- "--wait-backend $FAKECARD_MODULE" >/dev/null'
finish
