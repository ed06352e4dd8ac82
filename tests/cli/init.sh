#!/usr/bin/env bash
# ukey init: a blank token; re-initialising an initialised Key (refused
# without a terminal or --yes, wrong SO PIN, then done); --tries/--so-tries;
# --transport-pin and the first `pin change`; bad options.
. "$(dirname "$0")/lib.sh"
need pkcs11-tool
cli_setup

new_pins SO U1 U2 U3 NEW
TRANSPORT=1111            # the NBCA-style transport PIN: trivial on purpose

blank_count() { uk --json list; expect_rc 0 "list"; jr "$OUT" '[.keys[] | select(.initialized == false)] | length'; }

step "no PIN source and no terminal: usage error, nothing changed"
uk init --label nopin
expect_rc 2 "init without PIN source"
assert_contains "$ERR" "run on a terminal, or give it with --pin-fd/--pin-file" "init without PIN source"
uk --json list
jeq "$OUT" '[.keys[] | .initialized]' '[false]' "token after a failed init"

step "a trivial SO PIN is refused before anything is written"
uk --json init --label trivial --so-pin-fd 3 --pin-fd 4 3<<<"7777777" 4<<<"$U1"
jerror 12 "init with SO PIN 7777777"
assert_contains "$ERR" "that PIN is not allowed" "init with SO PIN 7777777"
assert_not_contains "$OUT$ERR" "7777777" "error output"
uk --json list
jeq "$OUT" '[.keys[] | .initialized]' '[false]' "token after a refused SO PIN"

step "init a blank token (text output)"
ok init --label alice --so-pin-fd 3 --pin-fd 4 3<<<"$SO" 4<<<"$U1"
assert_matches "$OUT" "^Key 'alice' is initialised \\(serial [0-9a-f]{16}\\)\\.\$" "init (text)"
serial_a=$(sed -n "s/^Key 'alice' is initialised (serial \\([0-9a-f]*\\)).*/\\1/p" <<<"$OUT")
ok --json list
alice=$(key_in "$OUT" alice)
slot_a=$(jr "$alice" '.slot')
jeq "$alice" '.serial' "\"$serial_a\"" "alice"
jeq "$alice" '.initialized' true "alice"
jeq "$alice" '.pin' '{"counted_by":"ukey","must_change":false,"so":{"locked":false,"max_tries":6,"tries_left":6},"state_damaged":false,"user":{"locked":false,"max_tries":6,"tries_left":6}}' "alice's PIN status"
ok pin verify alice --pin-fd 3 3<<<"$U1"
ok pin verify alice --so --pin-fd 3 3<<<"$SO"
# Something on the Key that a wipe would delete.
p11 --token-label alice --login --pin "$U1" --keypairgen --key-type EC:prime256v1 --id 42 --label kept >/dev/null
ok --json info alice
jeq "$OUT" '[.objects[] | select(.class == "public-key") | .label]' '["kept"]' "alice's objects"

step "re-init without a terminal and without --yes: cancelled, nothing changed"
uk init alice --label renamed --so-pin-fd 3 --pin-fd 4 3<<<"$SO" 4<<<"$U2"
expect_rc 11 "re-init without --yes"
assert_contains "$ERR" "nothing was changed" "re-init without --yes"
assert_contains "$ERR" "Key 'alice' (serial $serial_a)" "re-init without --yes"
assert_contains "$ERR" "--yes" "re-init without --yes"
[[ -z $OUT ]] || fail "re-init without --yes printed on stdout: $OUT"
uk --json init alice --label renamed --so-pin-fd 3 --pin-fd 4 3<<<"$SO" 4<<<"$U2"
jerror 11 "re-init without --yes (--json)"
jeq "$OUT" '.error.ckr' null "re-init without --yes (--json)"
ok --json info alice
jeq "$OUT" '.label' '"alice"' "label after cancelled re-init"
jeq "$OUT" '.serial' "\"$serial_a\"" "serial after cancelled re-init"
jeq "$OUT" '[.objects[] | .label]' '["kept"]' "objects after cancelled re-init"
jeq "$OUT" '.pin.so.tries_left' 6 "SO tries after cancelled re-init (the SO PIN was not even tried)"
ok pin verify alice --pin-fd 3 3<<<"$U1"
# Naming no Key picks the blank one, never the initialised one.
[[ $(blank_count) == 1 ]] || fail "expected one blank token"

step "re-init with --yes and a wrong SO PIN: refused, one SO try spent"
pin "Wrong-So-init-1"
uk --json init alice --yes --label renamed --so-pin-fd 3 --pin-fd 4 3<<<"Wrong-So-init-1" 4<<<"$U2"
jerror 5 "re-init with a wrong SO PIN"
jeq "$OUT" '.error.ckr' '"CKR_PIN_INCORRECT"' "re-init with a wrong SO PIN"
assert_contains "$ERR" "wrong SO PIN: 5 tries left" "re-init with a wrong SO PIN"
ok --json info alice
jeq "$OUT" '.label' '"alice"' "label after re-init with a wrong SO PIN"
jeq "$OUT" '[.objects[] | .label]' '["kept"]' "objects after re-init with a wrong SO PIN"
jeq "$OUT" '.pin.so.tries_left' 5 "SO tries after a wrong SO PIN"

step "re-init with --yes, --tries 3 and --so-tries 4"
uk --json init alice -y --label alice2 --tries 3 --so-tries 4 --so-pin-fd 3 --pin-fd 4 3<<<"$SO" 4<<<"$U2"
expect_rc 0 "re-init --yes"
json_ok "$OUT" "init --json"
jkeys "$OUT" '.' "initialized key" "init --json"
jeq "$OUT" '.initialized' true "init --json"
jkeys "$OUT" '.key' "$KEY_FIELDS" "init --json .key"
jeq "$OUT" '.key.label' '"alice2"' "re-init"
jeq "$OUT" '.key.initialized' true "re-init"
jeq "$OUT" '.key.serial' "\"$serial_a\"" "re-init keeps SoftHSM2's serial"
jeq "$OUT" '.key.pin.user' '{"locked":false,"max_tries":3,"tries_left":3}' "--tries 3"
jeq "$OUT" '.key.pin.so' '{"locked":false,"max_tries":4,"tries_left":4}' "--so-tries 4"
jeq "$OUT" '.key.pin.must_change' false "re-init"
ok --json info alice2
jeq "$OUT" '.objects' '[]' "objects after re-init (wiped)"
jeq "$OUT" '.pin.user.max_tries' 3 "--tries 3 (info)"
jeq "$OUT" '.pin.so.max_tries' 4 "--so-tries 4 (info)"
ok pin verify alice2 --pin-fd 3 3<<<"$U2"
uk pin verify alice2 --pin-fd 3 3<<<"$U1"
expect_rc 5 "the old user PIN after re-init"
assert_contains "$ERR" "wrong PIN: 2 tries left before the Key locks" "old user PIN, 3 tries"
uk pin verify alice2 --pin-fd 3 3<<<"$U1"
expect_rc 5 "the old user PIN after re-init"
assert_contains "$ERR" "wrong PIN: 1 try left; one more wrong PIN locks the Key" "old user PIN, 3 tries"
ok pin verify alice2 --pin-fd 3 3<<<"$U2"
ok --json info alice2
jeq "$OUT" '.pin.user' '{"locked":false,"max_tries":3,"tries_left":3}' "the right PIN restores the count"

step "--transport-pin: must be changed at first use"
uk --json init --label carol --transport-pin --so-pin-fd 3 --pin-fd 4 3<<<"$SO" 4<<<"$TRANSPORT"
expect_rc 0 "init --transport-pin (a trivial transport PIN is allowed)"
jeq "$OUT" '.key.label' '"carol"' "init --transport-pin"
jeq "$OUT" '.key.pin.must_change' true "init --transport-pin"
jeq "$OUT" '.key.pin.user' '{"locked":false,"max_tries":6,"tries_left":6}' "init --transport-pin"
ok init --label carol-text --yes carol --transport-pin --so-pin-fd 3 --pin-fd 4 3<<<"$SO" 4<<<"$TRANSPORT"
assert_contains "$OUT" "Key 'carol-text' is initialised" "init --transport-pin (text)"
assert_contains "$OUT" "transport PIN: the user must change it at first use (\`ukey pin change\`)" "init --transport-pin (text)"
ok --json list
jeq "$(key_in "$OUT" carol-text)" '.pin.must_change' true "list"
ok list
assert_contains "$OUT" "the PIN must be changed (\`ukey pin change\`)" "list (text)"
uk pin verify carol-text --pin-fd 3 3<<<"$TRANSPORT"
expect_rc 7 "pin verify with the transport PIN"
assert_contains "$ERR" "must be changed before use" "pin verify with the transport PIN"
assert_contains "$ERR" "ukey pin change" "pin verify with the transport PIN"
uk --json pin verify carol-text --pin-fd 3 3<<<"$TRANSPORT"
jerror 7 "pin verify --json with the transport PIN"
jeq "$OUT" '.error.ckr' '"CKR_PIN_EXPIRED"' "pin verify --json with the transport PIN"
ok --json info carol-text
jeq "$OUT" '.pin.user.tries_left' 6 "the right transport PIN costs no try"
jeq "$OUT" '.pin.must_change' true "still to be changed"
# A wrong transport PIN is a wrong PIN.
pin "Wrong-transport-9"
uk pin change carol-text --pin-fd 3 --new-pin-fd 4 3<<<"Wrong-transport-9" 4<<<"$U3"
expect_rc 5 "pin change with a wrong transport PIN"
assert_contains "$ERR" "wrong PIN: 5 tries left" "pin change with a wrong transport PIN"
uk --json pin change carol-text --pin-fd 3 --new-pin-fd 4 3<<<"$TRANSPORT" 4<<<"$U3"
expect_rc 0 "pin change from the transport PIN"
jkeys "$OUT" '.' "changed pin" "pin change --json"
jeq "$OUT" '.changed' true "pin change"
jeq "$OUT" '.pin.must_change' false "must_change after pin change"
jeq "$OUT" '.pin.user' '{"locked":false,"max_tries":6,"tries_left":6}' "after pin change"
ok pin verify carol-text --pin-fd 3 3<<<"$U3"
assert_contains "$OUT" "The PIN is right." "pin verify (text)"
uk pin verify carol-text --pin-fd 3 3<<<"$TRANSPORT"
expect_rc 5 "the transport PIN after the change"
ok --json list
jeq "$(key_in "$OUT" carol-text)" '.pin.must_change' false "list after pin change"

step "the transport PIN and the limits travel with the Key: another user's state folder"
uk --json init carol-text --yes --label frank --transport-pin --tries 3 --so-tries 3 --so-pin-fd 3 --pin-fd 4 \
    3<<<"$SO" 4<<<"$TRANSPORT"
expect_rc 0 "init --transport-pin --tries 3 --so-tries 3"
jeq "$OUT" '.key.pin.must_change' true "init frank"
# Another user of the same Key: the same token, another ukey.conf whose
# state folder has never seen this Key.
mkdir -m 0700 "$T/state-other"
sed "s|^state_dir = .*|state_dir = \"$T/state-other\"|" "$T/ukey.conf" >"$T/ukey-other.conf"
UKEY_CONF="$T/ukey-other.conf" uk --json info frank
expect_rc 0 "info frank as another user"
jeq "$OUT" '.pin.must_change' true "another user sees must_change"
jeq "$OUT" '.pin.user' '{"locked":false,"max_tries":3,"tries_left":3}' "another user sees the Key's user limit"
jeq "$OUT" '.pin.so' '{"locked":false,"max_tries":3,"tries_left":3}' "another user sees the Key's SO limit"
UKEY_CONF="$T/ukey-other.conf" uk pin verify frank --pin-fd 3 3<<<"$TRANSPORT"
expect_rc 7 "the transport PIN for another user"
UKEY_CONF="$T/ukey-other.conf" uk --json pin change frank --pin-fd 3 --new-pin-fd 4 3<<<"$TRANSPORT" 4<<<"$U3"
expect_rc 0 "another user changes the transport PIN"
jeq "$OUT" '.pin.must_change' false "after the change"
ok --json info frank
jeq "$OUT" '.pin.must_change' false "the issuer's account after the other user's change"
jeq "$OUT" '.pin.user.max_tries' 3 "the issuer's account"
ok pin verify frank --pin-fd 3 3<<<"$U3"

step "bad options: usage errors, nothing changed"
for bad in "--tries 0" "--tries 16" "--so-tries 0" "--so-tries 16" "--tries x"; do
    # shellcheck disable=SC2086
    uk init --label bad $bad --so-pin-fd 3 --pin-fd 4 3<<<"$SO" 4<<<"$NEW"
    expect_rc 2 "init $bad"
done
uk init --so-pin-fd 3 --pin-fd 4 3<<<"$SO" 4<<<"$NEW"
expect_rc 2 "init without --label"
assert_contains "$ERR" "--label" "init without --label"
uk init --label "$(printf 'x%.0s' {1..33})" --so-pin-fd 3 --pin-fd 4 3<<<"$SO" 4<<<"$NEW"
expect_rc 2 "init with a 33-byte label"
assert_contains "$ERR" "longer than 32 bytes" "init with a 33-byte label"
[[ $(blank_count) == 1 ]] || fail "a refused init changed a token"
# 32 bytes is the most a label holds.
label32="$(printf 'L%.0s' {1..28})-end"
init_key "$label32" "$SO" "$NEW"
ok --json info "$label32"
jeq "$OUT" '.label' "\"$label32\"" "32-byte label"

step "the slot ID init prints names the Key in the next command"
init_key dave "$SO" "$NEW"
init_slot=$SLOT
ok --json list
soft jeq "$(key_in "$OUT" dave)" '.slot' "$init_slot" "slot in \`ukey --json init\` vs \`ukey --json list\`"
uk --json info "$init_slot"
soft expect_rc 0 "ukey info <slot printed by init>"
soft jeq "$OUT" '.label' '"dave"' "ukey info <slot printed by init>"

step "a user PIN refused by the quality rules leaves a blank token blank"
[[ $(blank_count) == 1 ]] || fail "expected one blank token"
ok --json list
keys_before=$(jr "$OUT" '.keys | length')
uk --json init --label eve --so-pin-fd 3 --pin-fd 4 3<<<"$SO" 4<<<"654321"
jerror 12 "init with user PIN 654321"
assert_contains "$ERR" "not allowed" "init with user PIN 654321"
ok --json list
soft jeq "$OUT" '[.keys[] | select(.label == "eve")] | length' 0 "Keys labelled eve after a refused init"
soft jeq "$OUT" '.keys | length' "$keys_before" "number of tokens after a refused init (SoftHSM2 adds a blank one when one is initialised)"

finish
