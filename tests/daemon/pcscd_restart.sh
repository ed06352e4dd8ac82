#!/usr/bin/env bash
# daemon.pcscd_restart: pcscd stopped (SIGTERM), killed (SIGKILL) and started
# again while ukeyd runs, with a card in: one pcsc-down each time (a PC/SC
# code and a message), the readers and the card's Key removed, `ukey status`
# says so in plain words; then one pcsc-up, both readers back and the card
# seen again. Also: ukeyd started while pcscd is not running reports it down
# (0x8010001D) and recovers when pcscd starts.
. "$(dirname "$0")/lib.sh"

DAEMON_PCSC=true
DAEMON_RESCAN=0
daemon_setup
pcsc_setup
R0=$(pcsc_reader_name 0)
R1=$(pcsc_reader_name 1)
WAIT=${PCSC_WAIT:-30}   # a bound on waits that end when the event comes

daemon_start
# The subscriber comes once ukeyd has both readers (and has announced them),
# so that it gets only the events the test makes.
wait_for "ukeyd seeing pcscd's two readers" "$WAIT" pcsc_readers_up 2
watch_start all
card_insert 0
wait_events all '.event == "key-inserted"' 1 "$WAIT"

# cycle HOW N: pcscd ended with HOW (stop|kill), the Nth time.
cycle() {
    local how=$1 n=$2 ev code
    step "pcscd ended with $how (#$n)"
    local ins_before
    ins_before=$(count_events all '.event == "key-inserted"')
    if [[ $how == stop ]]; then pcsc_stop; else pcsc_kill; fi
    wait_events all '.event == "pcsc-down"' "$n" "$WAIT"
    ev=$(events all '.event == "pcsc-down"' | tail -n 1)
    jeq "$ev" '.error' '"pcscd-unreachable"' "pcsc-down"
    code=$(jr "$ev" '.code')
    # The blocked SCardGetStatusChange gets the RPC error (or, on a graceful
    # stop, SCARD_E_SERVICE_STOPPED); a new context SCARD_E_NO_SERVICE: any
    # of them may be the first one seen.
    case $code in
    0x80100013 | 0x8010001D | 0x8010001E) ;;
    *) show event "$ev"; fail "pcsc-down code $code, expected 0x80100013, 0x8010001D or 0x8010001E" ;;
    esac
    jmatch "$ev" '.message' 'pcscd' "pcsc-down message"
    wait_events all ".event == \"reader-removed\" and .reader == \"$R0\"" "$n" "$WAIT"
    wait_events all ".event == \"reader-removed\" and .reader == \"$R1\"" "$n" "$WAIT"
    wait_events all ".event == \"key-removed\" and .key.reader == \"$R0\"" "$n" "$WAIT"
    wait_hooks pcsc-down "$n" "" "$WAIT"
    h=$(hook_files pcsc-down | tail -n 1)
    assert_eq "$(hook_env "$h" UKEY_ERROR_CODE)" "$code" "pcsc-down hook UKEY_ERROR_CODE"
    assert_eq "$(hook_env "$h" UKEY_ERROR)" pcscd-unreachable "pcsc-down hook UKEY_ERROR"

    status_json
    jeq "$ST" '.status.pcsc.state' '"down"' "status while pcscd is down"
    jeq "$ST" '.status.pcsc.readers' '[]' "status readers while down"
    jeq "$ST" '.keys' '[]' "status keys while down"
    uk status --socket "$SOCK"
    expect_rc 0 "ukey status while pcscd is down"
    assert_contains "$OUT" "PC/SC: DOWN: pcscd is not reachable: "
    assert_contains "$OUT" "smart cards and USB Keys behind pcscd are not seen until it answers again"
    assert_contains "$OUT" "Keys present: 0"

    step "pcscd started again (#$n)"
    pcsc_relaunch
    wait_events all '.event == "pcsc-up"' "$n" "$WAIT"
    wait_events all ".event == \"reader-added\" and .reader == \"$R0\"" "$n" "$WAIT"
    wait_events all ".event == \"reader-added\" and .reader == \"$R1\"" "$n" "$WAIT"
    wait_events all ".event == \"key-inserted\" and .key.reader == \"$R0\"" $((ins_before + 1)) "$WAIT"
    wait_hooks pcsc-up "$n" "" "$WAIT"
    pcsc_wait_card 0 present || fail "pcscd does not see the card again"
    status_json
    jeq "$ST" '.status.pcsc.state' '"up"' "status after pcscd is back"
    jeq "$ST" '[.keys[].id]' "[\"pcsc:$R0\"]" "status keys after pcscd is back"
    uk status --socket "$SOCK"
    assert_contains "$OUT" "PC/SC: up"
    assert_contains "$OUT" "reader '$R0': card present"
}

cycle stop 1
cycle kill 2
cycle kill 3
# Every event the counts below expect was waited for; the sleep only gives a
# repeat time to show (a negative check).
sleep 0.5
expect_count all '.event == "pcsc-down"' 3 "pcsc-down"
expect_count all '.event == "pcsc-up"' 3 "pcsc-up"
expect_count all '.event == "reader-removed"' 6 "reader-removed (2 readers x 3)"
expect_count all '.event == "reader-added"' 6 "reader-added (2 readers x 3)"
# The card may flap once after a restart (tests/pcsc/README.md), so the
# numbers of inserted and removed events must match, not be exact.
ins=$(count_events all '.event == "key-inserted"')
rem=$(count_events all '.event == "key-removed"')
assert_eq "$((ins - rem))" 1 "key-inserted minus key-removed (the card is in)"
((ins >= 4)) || fail "only $ins key-inserted events for 4 appearances of the card"
assert_eq "$(hook_count pcsc-down)" 3 "pcsc-down hook runs"
assert_eq "$(hook_count pcsc-up)" 3 "pcsc-up hook runs"

step "ukeyd started while pcscd is not running"
watch_stop all
daemon_stop
pcsc_stop
rm -f "$T"/hooks/*
daemon_start
wait_hooks pcsc-down 1 "" "$WAIT"
h=$(hook_files pcsc-down)
assert_eq "$(hook_env "$h" UKEY_ERROR_CODE)" 0x8010001D "pcsc-down at start: code"
status_json
jeq "$ST" '.status.pcsc.state' '"down"' "status at start without pcscd"
jeq "$ST" '.status.pcsc.error.code' '"0x8010001D"' "status at start without pcscd"
uk status --socket "$SOCK"
assert_contains "$OUT" "PC/SC: DOWN: pcscd is not reachable: pcscd, the PC/SC service, is not running"
assert_contains "$OUT" "(0x8010001D)"
watch_start late
pcsc_relaunch
wait_events late '.event == "pcsc-up"' 1 "$WAIT"
wait_events late ".event == \"key-inserted\" and .key.reader == \"$R0\"" 1 "$WAIT"
wait_events late '.event == "reader-added"' 2 "$WAIT"
status_json
jeq "$ST" '.status.pcsc.state' '"up"' "status after pcscd started"
expect_count late '.event == "pcsc-down"' 0 "pcsc-down after pcscd started"
expect_count late '.event == "pcsc-up"' 1 "pcsc-up after pcscd started"
assert_eq "$(hook_count pcsc-down)" 1 "pcsc-down hook runs (start without pcscd)"
watch_stop late
daemon_stop
finish
