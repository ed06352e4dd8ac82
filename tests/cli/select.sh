#!/usr/bin/env bash
# Which Key a command works on: by label, serial, slot ID (decimal or 0x
# hex) and RFC 7512 pkcs11: URI; an invalid URI (exit 2); no match (exit 3,
# the candidates listed); several matches or none named among several Keys
# (exit 4, the candidates listed). Checked on `info` and on `pin verify`.
. "$(dirname "$0")/lib.sh"
cli_setup

new_pins SO UA UB

step "one initialised Key: no KEY needed"
init_key alice "$SO" "$UA"
ok --json info
jeq "$OUT" '.label' '"alice"' "info without KEY, one Key"
ok pin verify --pin-fd 3 3<<<"$UA"

step "two Keys"
init_key bob "$SO" "$UB"
ok --json list
A=$(key_in "$OUT" alice); B=$(key_in "$OUT" bob)
slot_a=$(jr "$A" .slot); serial_a=$(jr "$A" .serial)
slot_b=$(jr "$B" .slot); serial_b=$(jr "$B" .serial)
blank_slot=$(jr "$OUT" '.keys[] | select(.initialized == false) | .slot')
hex_b=$(printf '0x%x' "$slot_b")

# selects SPEC SERIAL: `ukey info SPEC` picks the Key with that serial, and
# `pin verify SPEC` checks that Key's PIN.
selects() {
    local spec=$1 serial=$2 pin
    uk --json info "$spec"
    expect_rc 0 "ukey info '$spec'"
    jeq "$OUT" '.serial' "\"$serial\"" "ukey info '$spec'"
    if [[ $serial == "$serial_a" ]]; then pin=$UA; else pin=$UB; fi
    uk pin verify "$spec" --pin-fd 3 3<<<"$pin"
    expect_rc 0 "ukey pin verify '$spec'"
}

step "by label, serial, slot"
selects alice "$serial_a"
selects bob "$serial_b"
selects "$serial_a" "$serial_a"
selects "$serial_b" "$serial_b"
selects "$slot_a" "$serial_a"
selects "$slot_b" "$serial_b"
selects "$hex_b" "$serial_b"

step "by pkcs11: URI"
selects "pkcs11:token=alice" "$serial_a"
selects "pkcs11:token=bob" "$serial_b"
selects "pkcs11:serial=$serial_a" "$serial_a"
selects "pkcs11:serial=$serial_b" "$serial_b"
selects "pkcs11:manufacturer=SoftHSM%20project;model=SoftHSM%20v2;token=bob" "$serial_b"
selects "pkcs11:token=%61lice" "$serial_a"             # percent-encoded 'a'
selects "pkcs11:token=alice;serial=$serial_a" "$serial_a"

step "invalid URI: usage error"
for bad in "pkcs11:token=%zz" "pkcs11:token=%4"; do
    uk --json info "$bad"
    jerror 2 "ukey info '$bad'"
    assert_contains "$ERR" "'$bad' is not a valid PKCS#11 URI" "ukey info '$bad'"
    uk pin verify "$bad" --pin-fd 3 3<<<"$UA"
    expect_rc 2 "ukey pin verify '$bad'"
done

# candidates_listed TEXT N: the message lists exactly N Keys, one per line,
# each with its label, serial and slot.
candidates_listed() {
    local text=$1 n=$2
    [[ $(grep -cE "^  '.*' serial [0-9a-f-]+ slot [0-9]+ backend softhsm\$" <<<"$text") == "$n" ]] \
        || { show stderr "$text"; fail "expected $n candidate lines"; }
}

step "no match: exit 3 with the Keys present"
for spec in nobody "pkcs11:token=nobody" "pkcs11:serial=0000000000000000" 12345 "ALICE"; do
    uk --json info "$spec"
    jerror 3 "ukey info '$spec'"
    assert_contains "$ERR" "ukey: no Key matches '$spec'; the Keys present are:" "ukey info '$spec'"
    candidates_listed "$ERR" 3
    assert_contains "$ERR" "  'alice' serial $serial_a slot $slot_a backend softhsm" "candidates"
    assert_contains "$ERR" "  'bob' serial $serial_b slot $slot_b backend softhsm" "candidates"
    assert_contains "$ERR" "  '(not initialised)' serial - slot $blank_slot backend softhsm" "candidates"
    uk pin verify "$spec" --pin-fd 3 3<<<"$UA"
    expect_rc 3 "ukey pin verify '$spec'"
done

step "ambiguous: no KEY with two Keys, or a spec several Keys match: exit 4"
uk --json info
jerror 4 "ukey info (two Keys)"
assert_contains "$ERR" "ukey: 2 Keys are present; name one by label, serial, slot or pkcs11: URI:" "ukey info (two Keys)"
candidates_listed "$ERR" 2
assert_contains "$ERR" "  'alice' serial $serial_a slot $slot_a backend softhsm" "candidates"
assert_contains "$ERR" "  'bob' serial $serial_b slot $slot_b backend softhsm" "candidates"
uk pin verify --pin-fd 3 3<<<"$UA"
expect_rc 4 "ukey pin verify (two Keys)"
uk pin change --pin-fd 3 --new-pin-fd 4 3<<<"$UA" 4<<<"$UB"
expect_rc 4 "ukey pin change (two Keys)"
uk pin unlock --so-pin-fd 3 --new-pin-fd 4 3<<<"$SO" 4<<<"$UB"
expect_rc 4 "ukey pin unlock (two Keys)"
uk --json info "pkcs11:model=SoftHSM%20v2"
jerror 4 "ukey info pkcs11:model=..."
assert_contains "$ERR" "3 Keys match 'pkcs11:model=SoftHSM%20v2'; name one by serial or slot:" "pkcs11:model=..."
candidates_listed "$ERR" 3
# Two Keys with one label.
init_key alice "$SO" "$UB"
serial_a2=$SERIAL
uk --json info alice
jerror 4 "ukey info alice (two Keys labelled alice)"
assert_contains "$ERR" "2 Keys match 'alice'; name one by serial or slot:" "two Keys labelled alice"
candidates_listed "$ERR" 2
assert_contains "$ERR" "'alice' serial $serial_a slot $slot_a" "two Keys labelled alice"
assert_contains "$ERR" "'alice' serial $serial_a2 slot" "two Keys labelled alice"
# ... told apart by serial.
selects "$serial_a" "$serial_a"
uk --json info "$serial_a2"
expect_rc 0 "ukey info <serial of the second alice>"
jeq "$OUT" '.serial' "\"$serial_a2\"" "second alice"
# None of these spent a PIN try.
for s in "$serial_a" "$serial_b"; do
    ok --json info "$s"
    jeq "$OUT" '.pin.user.tries_left' 6 "tries after the selection failures"
done

finish
