#!/usr/bin/env bash
# ukey pin verify | change | unlock: right and wrong PINs with the exact
# messages and JSON counts, the lock after 6 wrong PINs and the unlock with the
# SO PIN, PIN changes and the quality rules, the SO PIN, PIN sources (fd,
# file, two PINs on one descriptor) and their errors.
. "$(dirname "$0")/lib.sh"
cli_setup

new_pins SO SO2 U1 U2 U3 U4 U5 WRONG WRONG_SO

init_key alice "$SO" "$U1"

# counts USER_LEFT SO_LEFT: the PIN status `ukey --json info` reports.
counts() {
    ok --json info alice
    jeq "$OUT" '[.pin.user.tries_left, .pin.user.locked, .pin.so.tries_left, .pin.so.locked]' \
        "[$1,$([[ $1 == 0 ]] && echo true || echo false),$2,$([[ $2 == 0 ]] && echo true || echo false)]" \
        "${3:-PIN counts}"
}

step "pin verify: the right PIN"
ok pin verify alice --pin-fd 3 3<<<"$U1"
assert_eq "$OUT" "The PIN is right." "pin verify (text)"
[[ -z $ERR ]] || fail "pin verify printed on stderr: $ERR"
ok --json pin verify alice --pin-fd 3 3<<<"$U1"
json_ok "$OUT" "pin verify --json"
jkeys "$OUT" '.' "verified pin" "pin verify --json"
jeq "$OUT" '.verified' true "pin verify --json"
jkeys "$OUT" '.pin' "$PIN_FIELDS" "pin verify --json"
jeq "$OUT" '.pin.user' '{"locked":false,"max_tries":6,"tries_left":6}' "pin verify --json"
jeq "$OUT" '.pin.so' '{"locked":false,"max_tries":6,"tries_left":6}' "pin verify --json"

step "pin verify: wrong PINs count down"
uk pin verify alice --pin-fd 3 3<<<"$WRONG"
expect_rc 5 "wrong PIN"
assert_eq "$ERR" "ukey: wrong PIN: 5 tries left before the Key locks" "stderr of a wrong PIN"
[[ -z $OUT ]] || fail "a wrong PIN printed on stdout (without --json): $OUT"
uk --json pin verify alice --pin-fd 3 3<<<"$WRONG"
expect_rc 5 "wrong PIN (--json)"
json_ok "$OUT" "wrong PIN --json"
jkeys "$OUT" '.' "verified pin" "wrong PIN --json"
jeq "$OUT" '.verified' false "wrong PIN --json"
jeq "$OUT" '.pin.user' '{"locked":false,"max_tries":6,"tries_left":4}' "wrong PIN --json"
jeq "$OUT" '.pin.so.tries_left' 6 "wrong PIN --json"
assert_eq "$ERR" "ukey: wrong PIN: 4 tries left before the Key locks" "stderr of a wrong PIN (--json)"
for left in 3 2; do
    uk pin verify alice --pin-fd 3 3<<<"$WRONG"
    expect_rc 5 "wrong PIN"
    assert_eq "$ERR" "ukey: wrong PIN: $left tries left before the Key locks" "wrong PIN"
done
# The right PIN restores the count.
ok pin verify alice --pin-fd 3 3<<<"$U1"
counts 6 6 "after the right PIN"

step "6 wrong PINs lock the Key"
for left in 5 4 3 2; do
    uk pin verify alice --pin-fd 3 3<<<"$WRONG"
    expect_rc 5 "wrong PIN ($left left)"
done
uk pin verify alice --pin-fd 3 3<<<"$WRONG"
expect_rc 5 "5th wrong PIN"
assert_eq "$ERR" "ukey: wrong PIN: 1 try left; one more wrong PIN locks the Key" "5th wrong PIN"
uk pin verify alice --pin-fd 3 3<<<"$WRONG"
# The 6th wrong PIN locks the Key: the user must learn it is locked now and
# how to unlock it (exit 6, not 5 "tries are left").
soft expect_rc 6 "6th wrong PIN"
soft assert_contains "$ERR" "ukey pin unlock" "6th wrong PIN"
counts 0 6 "after 6 wrong PINs"
# Now even the right PIN is refused.
uk pin verify alice --pin-fd 3 3<<<"$U1"
expect_rc 6 "the right PIN on a locked Key"
assert_eq "$ERR" "ukey: the user PIN is locked: unlock it with the SO PIN (\`ukey pin unlock\`) or ask your issuer" \
    "the right PIN on a locked Key"
uk --json pin verify alice --pin-fd 3 3<<<"$U1"
expect_rc 6 "locked (--json)"
jeq "$OUT" '.verified' false "locked (--json)"
jeq "$OUT" '.pin.user' '{"locked":true,"max_tries":6,"tries_left":0}' "locked (--json)"
ok list
assert_contains "$OUT" "user PIN: LOCKED; SO PIN: 6 of 6 tries left" "list (text) of a locked Key"
# pin change is refused too.
uk pin change alice --pin-fd 3 --new-pin-fd 4 3<<<"$U1" 4<<<"$U2"
expect_rc 6 "pin change on a locked Key"
assert_contains "$ERR" "ukey pin unlock" "pin change on a locked Key"

step "pin unlock: wrong SO PIN, then the right one"
uk --json pin unlock alice --so-pin-fd 3 --new-pin-fd 4 3<<<"$WRONG_SO" 4<<<"$U2"
jerror 5 "unlock with a wrong SO PIN"
jeq "$OUT" '.error.ckr' '"CKR_PIN_INCORRECT"' "unlock with a wrong SO PIN"
assert_contains "$ERR" "ukey: wrong SO PIN: 5 tries left" "unlock with a wrong SO PIN"
counts 0 5 "after a wrong SO PIN"
uk pin unlock alice --so-pin-fd 3 --new-pin-fd 4 3<<<"$SO" 4<<<"123456"
expect_rc 12 "unlock with a trivial new PIN"
assert_contains "$ERR" "that PIN is not allowed" "unlock with a trivial new PIN"
counts 0 5 "a refused new PIN is refused before the SO PIN is used: nothing changed"
ok pin unlock alice --so-pin-fd 3 --new-pin-fd 4 3<<<"$SO" 4<<<"$U2"
assert_eq "$OUT" "The user PIN is set and unlocked." "pin unlock (text)"
counts 6 6 "after the unlock"
uk pin verify alice --pin-fd 3 3<<<"$U1"
expect_rc 5 "the old PIN after the unlock"
ok --json pin verify alice --pin-fd 3 3<<<"$U2"
jeq "$OUT" '.verified' true "the new PIN after the unlock"
jeq "$OUT" '.pin.user' '{"locked":false,"max_tries":6,"tries_left":6}' "after the unlock"
# --json of unlock, on an unlocked Key (it sets a new PIN all the same).
ok --json pin unlock alice --so-pin-fd 3 --new-pin-fd 4 3<<<"$SO" 4<<<"$U3"
jkeys "$OUT" '.' "unlocked pin" "pin unlock --json"
jeq "$OUT" '.unlocked' true "pin unlock --json"
jeq "$OUT" '.pin.user' '{"locked":false,"max_tries":6,"tries_left":6}' "pin unlock --json"
ok pin verify alice --pin-fd 3 3<<<"$U3"

step "pin change: old and new PIN on two descriptors, on one, from files"
ok pin change alice --pin-fd 3 --new-pin-fd 4 3<<<"$U3" 4<<<"$U4"
assert_eq "$OUT" "The user PIN was changed." "pin change (text)"
ok pin verify alice --pin-fd 3 3<<<"$U4"
# Both on one descriptor, one per line.
ok --json pin change alice --pin-fd 3 --new-pin-fd 3 3<<<"$U4"$'\n'"$U5"
jkeys "$OUT" '.' "changed pin" "pin change --json"
jeq "$OUT" '.changed' true "pin change --json"
jeq "$OUT" '.pin.user.tries_left' 6 "pin change --json"
ok pin verify alice --pin-fd 3 3<<<"$U5"
# Files (0600; CRLF and a missing final newline are fine).
printf '%s\r\n' "$U5" >"$T/old.pin"
printf '%s' "$U1" >"$T/new.pin"
chmod 600 "$T/old.pin" "$T/new.pin"
ok pin change alice --pin-file "$T/old.pin" --new-pin-file "$T/new.pin"
assert_not_contains "$ERR" "warning" "PIN files 0600"
ok pin verify alice --pin-file "$T/new.pin"
# A PIN file others can read works, with a warning.
chmod 644 "$T/new.pin"
ok pin verify alice --pin-file "$T/new.pin"
assert_contains "$ERR" "ukey: warning: the user PIN file given with --pin-file is readable by other users; keep PIN files private (chmod 600)" \
    "PIN file 0644"

step "pin change: wrong old PIN and the quality rules"
uk pin change alice --pin-fd 3 --new-pin-fd 4 3<<<"$WRONG" 4<<<"$U2"
expect_rc 5 "pin change with a wrong old PIN"
assert_eq "$ERR" "ukey: wrong PIN: 5 tries left before the Key locks" "pin change with a wrong old PIN"
counts 5 6 "a wrong old PIN costs a try"
ok pin verify alice --pin-fd 3 3<<<"$U1"
for bad in 123456 1111 987654 abcdef "$U1"; do
    uk --json pin change alice --pin-fd 3 --new-pin-fd 4 3<<<"$U1" 4<<<"$bad"
    jerror 12 "pin change to a refused PIN"
    jeq "$OUT" '.error.ckr' '"CKR_PIN_INVALID"' "pin change to a refused PIN"
    assert_contains "$ERR" "ukey: changing the user PIN: that PIN is not allowed: avoid repeated digits, straight runs like 123456 and the old PIN" \
        "pin change to a refused PIN"
    counts 6 6 "a refused new PIN costs no try"
done
# Too short (SoftHSM2: 4..255).
uk --json pin change alice --pin-fd 3 --new-pin-fd 4 3<<<"$U1" 4<<<"a1b"
jerror 12 "pin change to a 3-character PIN"
jeq "$OUT" '.error.ckr' '"CKR_PIN_LEN_RANGE"' "pin change to a 3-character PIN"
ok pin verify alice --pin-fd 3 3<<<"$U1"

step "the SO PIN: verify, change, lock"
ok pin verify alice --so --pin-fd 3 3<<<"$SO"
assert_eq "$OUT" "The SO PIN is right." "pin verify --so"
uk --json pin verify alice --so --pin-fd 3 3<<<"$WRONG_SO"
expect_rc 5 "wrong SO PIN"
jeq "$OUT" '.verified' false "wrong SO PIN --json"
jeq "$OUT" '.pin.so' '{"locked":false,"max_tries":6,"tries_left":5}' "wrong SO PIN --json"
jeq "$OUT" '.pin.user.tries_left' 6 "wrong SO PIN --json"
assert_contains "$ERR" "ukey: wrong SO PIN: 5 tries left" "wrong SO PIN"
ok pin change alice --so --pin-fd 3 --new-pin-fd 4 3<<<"$SO" 4<<<"$SO2"
assert_eq "$OUT" "The SO PIN was changed." "pin change --so"
ok pin verify alice --so --pin-fd 3 3<<<"$SO2"
uk pin verify alice --so --pin-fd 3 3<<<"$SO"
expect_rc 5 "the old SO PIN"
uk pin change alice --so --pin-fd 3 --new-pin-fd 4 3<<<"$SO2" 4<<<"$SO2"
expect_rc 12 "pin change --so to the same PIN"
ok pin verify alice --pin-fd 3 3<<<"$U1"   # the user PIN is untouched
for i in 1 2 3 4; do
    uk pin verify alice --so --pin-fd 3 3<<<"$WRONG_SO"
    expect_rc 5 "wrong SO PIN"
done
uk pin verify alice --so --pin-fd 3 3<<<"$WRONG_SO"
expect_rc 5 "5th wrong SO PIN"
assert_contains "$ERR" "1 try left" "5th wrong SO PIN"
uk pin verify alice --so --pin-fd 3 3<<<"$WRONG_SO"
soft expect_rc 6 "6th wrong SO PIN (locks the SO PIN)"
counts 6 0 "after 6 wrong SO PINs"
uk pin unlock alice --so-pin-fd 3 --new-pin-fd 4 3<<<"$SO2" 4<<<"$U2"
expect_rc 6 "unlock with a locked SO PIN"
assert_contains "$ERR" "the SO PIN is locked: ukey can neither unlock nor re-initialise this Key any more" \
    "unlock with a locked SO PIN"
ok pin verify alice --pin-fd 3 3<<<"$U1"   # the user PIN still works
# Re-initialising checks the SO PIN too: refused, the right SO PIN included
# (else it would be an unlimited SO PIN oracle), and the Key is not wiped.
uk --json init alice --yes --label alice --so-pin-fd 3 --pin-fd 4 3<<<"$SO2" 4<<<"$U2"
jerror 6 "re-init with a locked SO PIN"
jeq "$OUT" '.error.ckr' '"CKR_PIN_LOCKED"' "re-init with a locked SO PIN"
assert_contains "$ERR" "the SO PIN is locked" "re-init with a locked SO PIN"
counts 6 0 "after a refused re-init"
ok pin verify alice --pin-fd 3 3<<<"$U1"   # not wiped: the user PIN is still the user PIN

step "PIN sources: errors"
uk --json pin verify alice --pin-fd 3 3<<<""
jerror 12 "empty PIN"
assert_eq "$ERR" "ukey: the user PIN is empty" "empty PIN"
uk pin verify alice --pin-file "$T/no-such-file"
expect_rc 12 "missing PIN file"
assert_contains "$ERR" "cannot read the user PIN file given with --pin-file: No such file or directory" "missing PIN file"
assert_not_contains "$ERR" "no-such-file" "missing PIN file: its name is not echoed (it might be a PIN)"
uk pin verify alice --pin-fd 3 3< <(head -c 300 /dev/zero | tr '\0' 'x')
expect_rc 12 "a 300-byte PIN"
assert_contains "$ERR" "longer than 256 bytes" "a 300-byte PIN"
uk pin verify alice --pin-fd -1
expect_rc 2 "--pin-fd -1"
uk pin verify alice
expect_rc 2 "no PIN source, no terminal"
assert_contains "$ERR" "the user PIN is needed: run on a terminal, or give it with --pin-fd/--pin-file" \
    "no PIN source, no terminal"
uk pin change alice --pin-fd 3 3<<<"$U1"
expect_rc 2 "pin change without a new PIN source, no terminal"
assert_contains "$ERR" "the new user PIN is needed" "pin change without a new PIN source"
counts 6 0 "PIN source errors cost no try"
ok pin verify alice --pin-fd 3 3<<<"$U1"

finish
