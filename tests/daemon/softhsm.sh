#!/usr/bin/env bash
# daemon.softhsm: SoftHSM2 tokens created and deleted by another process
# (softhsm2-util) are found by ukeyd's fallback rescan: key-inserted and
# key-removed reach a `ukey watch` subscriber and a hook, exactly once each
# (the time after the change is logged; the bound, 3 x interval + 20 s, only
# catches a change never seen). `ukey status` and `list` show the Key while
# it is there. Also: SIGTERM ends the daemon with 0 (within daemon_stop's
# bound).
. "$(dirname "$0")/lib.sh"

DAEMON_RESCAN=0.5
daemon_setup
BOUND=$(scan_bound 20)   # a bound on waits that end when the event comes

# timed_event EVENT N T0: waits (bound BOUND) for the N-th EVENT, logs how
# long after T0 (ms) it came; the EVENT lines in ev.
timed_event() {
    wait_events all ".event == \"$1\"" "$2" "$BOUND"
    log "$1 after $(($(now_ms) - $3)) ms (bound ${BOUND}s)"
    ev=$(events all ".event == \"$1\"")
}

daemon_start
watch_start all
watch_start kr --events key-inserted,key-removed
# The human form, one line per event.
"$UKEY" watch --socket "$SOCK" >"$T/watch.text.out" 2>"$T/watch.text.err" &
TEXT_WATCH=$!
wait_for "the text watcher" "$DAEMON_WAIT" subscribers_at_least 3

step "ukey watch --count/--timeout with nothing happening"
uk --json watch --socket "$SOCK" --count 1 --timeout 1
expect_rc 1 "ukey watch --count 1 --timeout 1 without events"
jeq "$OUT" '.error.code' 1 "watch --json error line"
assert_contains "$ERR" "0 of 1 events arrived within the --timeout"
uk watch --socket "$SOCK" --timeout 0.5
expect_rc 0 "ukey watch --timeout 0.5"
assert_eq "$OUT" "" "ukey watch output without events"
uk watch --socket "$SOCK" --events key-inserted,bogus --timeout 1
expect_rc 2 "ukey watch --events with an unknown event"
assert_contains "$ERR" "unknown event 'bogus'"

step "nothing present: no Key, no key event"
status_json
jeq "$ST" '.keys | length' 0 "status with only an empty slot"
jeq "$ST" '.status.pcsc.state' '"disabled"' "pcsc = false"
uk status --socket "$SOCK"
expect_rc 0 "ukey status"
assert_contains "$OUT" "Keys present: 0"
assert_contains "$OUT" "PC/SC: not watched"

step "a token appears (softhsm2-util --init-token in another process)"
t0=$(now_ms)
new_token Alice
timed_event key-inserted 1 "$t0"
jeq "$ev" '.key.label' '"Alice"' "key-inserted"
jeq "$ev" '.key.serial' "\"$TOKEN_SERIAL\"" "key-inserted"
jeq "$ev" '.key.backend' '"softhsm"' "key-inserted"
jeq "$ev" '.key.source' '"backend"' "key-inserted"
jeq "$ev" '.key.id' "\"softhsm/SoftHSM project/SoftHSM v2/$TOKEN_SERIAL\"" "key-inserted"
jtype "$ev" '.key.slot_id' number "key-inserted"
jtype "$ev" '.time_ms' number "key-inserted"
jmatch "$ev" '.time' '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z$' "key-inserted"
jeq "$ev" '.key.initialized' true "key-inserted"
jeq "$ev" '.key.certificates' '[]' "key-inserted"
SLOT=$(jr "$ev" '.key.slot_id')
wait_hooks key-inserted 1 "UKEY_TOKEN_SERIAL=$TOKEN_SERIAL" "$BOUND"
h=$(hook_files key-inserted "UKEY_TOKEN_SERIAL=$TOKEN_SERIAL")
assert_eq "$(hook_env "$h" UKEY_EVENT)" key-inserted "hook UKEY_EVENT"
assert_eq "$(hook_env "$h" UKEY_TOKEN_LABEL)" Alice "hook UKEY_TOKEN_LABEL"
assert_eq "$(hook_env "$h" UKEY_KEY_ID)" "softhsm/SoftHSM project/SoftHSM v2/$TOKEN_SERIAL" "hook UKEY_KEY_ID"
assert_eq "$(hook_env "$h" UKEY_SLOT_ID)" "$SLOT" "hook UKEY_SLOT_ID"
assert_eq "$(hook_env "$h" UKEY_BACKEND)" softhsm "hook UKEY_BACKEND"
assert_eq "$(hook_env "$h" UKEY_KEY_SOURCE)" backend "hook UKEY_KEY_SOURCE"
json_ok "$(hook_env "$h" UKEY_EVENT_JSON)" "hook UKEY_EVENT_JSON"

wait_for "the text watcher's line" "$DAEMON_WAIT" grep -q key-inserted "$T/watch.text.out"
assert_matches "$(cat "$T/watch.text.out")" "^[0-9T:.-]+Z key-inserted 'Alice'/$TOKEN_SERIAL slot $SLOT backend softhsm\$" "ukey watch line"

step "the daemon's view: status, list, the text form"
status_json
jeq "$ST" '.keys | length' 1 "status"
jeq "$ST" '.keys[0].label' '"Alice"' "status"
jeq "$ST" '.keys[0].slot_id' "$SLOT" "status"
uk status --socket "$SOCK"
expect_rc 0 "ukey status"
assert_contains "$OUT" "Keys present: 1"
assert_contains "$OUT" "'Alice'/$TOKEN_SERIAL (softhsm, SoftHSM project SoftHSM v2) slot $SLOT"
assert_contains "$OUT" "no certificates"
# The module's own view agrees on the slot ID (the stable ID).
uk --json list
expect_rc 0 "ukey list"
jeq "$(key_in "$OUT" Alice)" '.slot' "$SLOT" "ukey list vs the daemon"

step "a second token, then both deleted"
new_token Bob
BOB=$TOKEN_SERIAL
wait_events all '.event == "key-inserted"' 2 "$BOUND"
t0=$(now_ms)
delete_token Alice
timed_event key-removed 1 "$t0"
jeq "$ev" '.key.label' '"Alice"' "key-removed"
jeq "$ev" '.key.slot_id' "$SLOT" "key-removed"
wait_hooks key-removed 1 "UKEY_TOKEN_LABEL=Alice" "$BOUND"
delete_token Bob
wait_events all '.event == "key-removed"' 2 "$BOUND"
wait_hooks key-removed 1 "UKEY_TOKEN_SERIAL=$BOB" "$BOUND"

step "no repeats over several more rescans"
# Every watcher and hook has had each event first (waits), then a few more
# rescans pass (a sleep before a negative check): nothing more may come.
wait_events kr 'true' 4 "$BOUND"
wait_hooks key-inserted 2 "" "$BOUND"
text_lines_at_least() { (($(grep -c . "$T/watch.text.out") >= $1)); }
wait_for "the text watcher's 4 lines" "$DAEMON_WAIT" text_lines_at_least 4
sleep "$(awk -v i="$DAEMON_RESCAN" 'BEGIN{print 4*i}')"
expect_count all '.event == "key-inserted"' 2 "key-inserted"
expect_count all '.event == "key-removed"' 2 "key-removed"
expect_count all 'true' 4 "all events (no pin-locked, no others)"
expect_count kr 'true' 4 "the filtered watcher"
assert_eq "$(hook_count key-inserted)" 2 "key-inserted hook runs"
assert_eq "$(hook_count key-removed)" 2 "key-removed hook runs"
assert_eq "$(ls "$T/hooks" | grep -c .)" 4 "hook runs in all"
status_json
jeq "$ST" '.keys | length' 0 "status after the deletes"
jeq "$ST" '.status.subscribers' 3 "status: subscribers"

step "SIGINT ends ukey watch with 0"
kill -INT "$TEXT_WATCH"
rc=0; wait "$TEXT_WATCH" || rc=$?
assert_eq "$rc" 0 "ukey watch exit code on SIGINT"
assert_eq "$(grep -c . "$T/watch.text.out")" 4 "lines of the text watcher"
assert_matches "$(cat "$T/watch.text.out")" "key-removed 'Alice'/" "ukey watch line"

step "SIGTERM: exit 0; the watchers say the daemon went away"
daemon_stop
for w in all kr; do
    wait_until "$DAEMON_WAIT" eval "! alive ${WATCH_PID[$w]}" || fail "ukey watch '$w' still runs after ukeyd ended"
    rc=0; wait "${WATCH_PID[$w]}" || rc=$?
    unset "WATCH_PID[$w]"
    assert_eq "$rc" 15 "ukey watch '$w' exit code when ukeyd goes away"
    assert_contains "$(cat "$T/watch.$w.out")" '"error":{' "watch --json error line"
done
assert_contains "$(cat "$T/watch.all.err")" "ukeyd went away"
[[ ! -e $SOCK ]] || fail "the socket $SOCK is still there after a clean exit"
uk status --socket "$SOCK"
expect_rc 15 "ukey status without ukeyd"
assert_contains "$ERR" "ukeyd is not running: start it with \`systemctl start ukeyd\`"
assert_contains "$ERR" "$SOCK"
check_no_pin_in_logs
finish
