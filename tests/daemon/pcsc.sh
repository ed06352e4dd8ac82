#!/usr/bin/env bash
# daemon.pcsc: a real pcscd with the vpcd virtual reader (tests/pcsc). At
# start ukeyd reports both readers (reader-added, hooks); a card put in
# gives one key-inserted (source pcsc, the reader, the ATR) and taking it out
# one key-removed, seen by a `ukey watch` subscriber AND by a hook with
# UKEY_EVENT, UKEY_READER, UKEY_KEY_ID, UKEY_ATR. Two cycles, two readers.
. "$(dirname "$0")/lib.sh"

DAEMON_PCSC=true
DAEMON_RESCAN=0   # only PC/SC changes trigger scans here
daemon_setup
pcsc_setup
R0=$(pcsc_reader_name 0)
R1=$(pcsc_reader_name 1)
WAIT=${PCSC_WAIT:-10}

daemon_start
# The subscriber comes once ukeyd has both readers (and has announced them),
# so that it gets only the events the test makes.
wait_for "ukeyd seeing pcscd's two readers" "$WAIT" pcsc_readers_up 2
watch_start all

step "start: pcscd up, both readers added (hooks), no card"
wait_hooks reader-added 2 "" "$WAIT"
for r in "$R0" "$R1"; do
    assert_eq "$(hook_count reader-added "UKEY_READER=$r")" 1 "reader-added hook for '$r'"
done
status_json
jeq "$ST" '.status.pcsc.state' '"up"' "status"
jeq "$ST" '[.status.pcsc.readers[].name] | sort' "[\"$R0\",\"$R1\"]" "status readers"
jeq "$ST" '[.status.pcsc.readers[].card]' '[false,false]' "status readers"
jeq "$ST" '.keys' '[]' "status keys"
uk status --socket "$SOCK"
expect_rc 0
assert_contains "$OUT" "PC/SC: up"
assert_contains "$OUT" "reader '$R0': empty"

for cycle in 1 2; do
    step "cycle $cycle: card in reader 0"
    card_insert 0
    wait_events all '.event == "key-inserted"' "$cycle" "$WAIT"
    log "key-inserted $(($(now_ms) - PCSC_LAST_INSERT_MS)) ms after the vcard started"
    ev=$(events all '.event == "key-inserted"' | tail -n 1)
    jeq "$ev" '.key.source' '"pcsc"' "key-inserted"
    jeq "$ev" '.key.id' "\"pcsc:$R0\"" "key-inserted"
    jeq "$ev" '.key.reader' "\"$R0\"" "key-inserted"
    jeq "$ev" '.key.atr' '"3B80800101"' "key-inserted"
    jeq "$ev" '.key | has("slot_id")' false "key-inserted of a card no backend shows"
    wait_hooks key-inserted "$cycle" "UKEY_READER=$R0" "$WAIT"
    h=$(hook_files key-inserted "UKEY_READER=$R0" | tail -n 1)
    assert_eq "$(hook_env "$h" UKEY_EVENT)" key-inserted "hook UKEY_EVENT"
    assert_eq "$(hook_env "$h" UKEY_KEY_ID)" "pcsc:$R0" "hook UKEY_KEY_ID"
    assert_eq "$(hook_env "$h" UKEY_KEY_SOURCE)" pcsc "hook UKEY_KEY_SOURCE"
    assert_eq "$(hook_env "$h" UKEY_ATR)" 3B80800101 "hook UKEY_ATR"

    status_json
    jeq "$ST" "[.status.pcsc.readers[] | select(.name == \"$R0\") | .card]" '[true]' "status: the card"
    jeq "$ST" '[.keys[].id]' "[\"pcsc:$R0\"]" "status keys"
    uk status --socket "$SOCK"
    expect_rc 0
    assert_contains "$OUT" "reader '$R0': card present (ATR 3B80800101)"
    assert_contains "$OUT" "Keys present: 1"
    assert_contains "$OUT" "card (no backend shows it) in reader '$R0'"

    step "cycle $cycle: card out"
    card_remove 0
    wait_events all '.event == "key-removed"' "$cycle" "$WAIT"
    log "key-removed $(($(now_ms) - PCSC_LAST_REMOVE_MS)) ms after the vcard ended"
    ev=$(events all '.event == "key-removed"' | tail -n 1)
    jeq "$ev" '.key.id' "\"pcsc:$R0\"" "key-removed"
    jeq "$ev" '.key.reader' "\"$R0\"" "key-removed"
    wait_hooks key-removed "$cycle" "UKEY_READER=$R0" "$WAIT"
    h=$(hook_files key-removed "UKEY_READER=$R0" | tail -n 1)
    assert_eq "$(hook_env "$h" UKEY_KEY_ID)" "pcsc:$R0" "hook UKEY_KEY_ID"
done

step "the other reader: its own reader name"
card_insert 1
wait_events all ".event == \"key-inserted\" and .key.reader == \"$R1\"" 1 "$WAIT"
wait_hooks key-inserted 1 "UKEY_READER=$R1" "$WAIT"
card_remove 1
wait_events all ".event == \"key-removed\" and .key.reader == \"$R1\"" 1 "$WAIT"
wait_hooks key-removed 1 "UKEY_READER=$R1" "$WAIT"

step "exact counts"
sleep 1
expect_count all '.event == "key-inserted"' 3
expect_count all '.event == "key-removed"' 3
expect_count all '.event | test("^(reader-|pcsc-)")' 0 "no reader or pcsc events while pcscd runs"
expect_count all 'true' 6 "all events"
assert_eq "$(hook_count key-inserted)" 3 "key-inserted hook runs"
assert_eq "$(hook_count key-removed)" 3 "key-removed hook runs"
assert_eq "$(hook_count reader-added)" 2 "reader-added hook runs"
assert_eq "$(ls "$T/hooks" | grep -c .)" 8 "hook runs in all"
status_json
jeq "$ST" '.keys' '[]' "status keys at the end"

watch_stop all
daemon_stop
finish
