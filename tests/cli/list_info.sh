#!/usr/bin/env bash
# ukey list / ukey info, field by field: no Key at all, one blank token, one
# initialised Key (then with certificates and a failed PIN), two Keys.
# Slot IDs and serials are cross-checked with pkcs11-tool (through the module,
# and straight on SoftHSM2).
. "$(dirname "$0")/lib.sh"
need pkcs11-tool openssl
cli_setup

new_pins SO U1 U2

# check_key JSON: the fields every Key object has, with their types.
check_key_schema() {
    local j=$1 what=$2
    jkeys "$j" '.' "$KEY_FIELDS_CERTS" "$what"
    jtype "$j" '.slot' number "$what"
    jmatch "$j" '.slot' '^[1-9][0-9]*$' "$what"
    jeq "$j" '.backend' '"softhsm"' "$what"
    jeq "$j" '.manufacturer' '"SoftHSM project"' "$what"
    jeq "$j" '.model' '"SoftHSM v2"' "$what"
    jmatch "$j" '.reader' '^SoftHSM slot ID 0x[0-9a-f]+$' "$what"
    jeq "$j" '.pin_min_length' 4 "$what"
    jeq "$j" '.pin_max_length' 255 "$what"
}
# check_blank JSON: an uninitialised token.
check_blank() {
    local j=$1 what=$2
    check_key_schema "$j" "$what"
    jeq "$j" '.initialized' false "$what"
    jeq "$j" '.label' '""' "$what"
    jeq "$j" '.serial' '""' "$what"
    jeq "$j" '.pin' null "$what"
    jeq "$j" '.certificates' null "$what"
    jeq "$j" '.nearest_expiry' null "$what"
}
# check_pin JSON USER_LEFT USER_MAX SO_LEFT SO_MAX [MUST_CHANGE]
check_pin() {
    local j=$1 what=$6
    jkeys "$j" '.pin' "$PIN_FIELDS" "$what"
    jkeys "$j" '.pin.user' "$TRIES_FIELDS" "$what"
    jkeys "$j" '.pin.so' "$TRIES_FIELDS" "$what"
    jeq "$j" '.pin.counted_by' '"ukey"' "$what"
    jeq "$j" '.pin.user.tries_left' "$2" "$what"
    jeq "$j" '.pin.user.max_tries' "$3" "$what"
    jeq "$j" '.pin.user.locked' "$([[ $2 == 0 ]] && echo true || echo false)" "$what"
    jeq "$j" '.pin.so.tries_left' "$4" "$what"
    jeq "$j" '.pin.so.max_tries' "$5" "$what"
    jeq "$j" '.pin.so.locked' "$([[ $4 == 0 ]] && echo true || echo false)" "$what"
    jeq "$j" '.pin.must_change' false "$what"
    jeq "$j" '.pin.state_damaged' false "$what"
}
# hex_slot N: the slot as pkcs11-tool prints it (0x...).
hex_slot() { printf '0x%x' "$1"; }

step "no Key at all (the only backend is optional and missing)"
cp "$T/ukey.conf" "$T/ukey.conf.good"
sed -i 's|^module = .*|module = "/nonexistent/libnothing.so"\noptional = true|' "$T/ukey.conf"
ok --json list
json_ok "$OUT" "list --json"
jeq "$OUT" '.' '{"keys":[]}' "list with no Key"
ok list
assert_contains "$OUT" "No Key found" "list with no Key"
uk --json info
jerror 3 "info with no Key"
assert_contains "$ERR" "no Key found" "info with no Key"
cp "$T/ukey.conf.good" "$T/ukey.conf"

step "one blank token, no initialised Key"
ok --json list
json_ok "$OUT" "list --json"
jkeys "$OUT" '.' "keys"
jeq "$OUT" '.keys | length' 1 "list"
blank=$(jv "$OUT" '.keys[0]')
check_blank "$blank" "blank token"
blank_slot=$(jr "$blank" '.slot')
# The same slot ID through pkcs11-tool; the reader names SoftHSM2's slot.
out=$(p11 -L)
assert_matches "$out" "^Slot 0 \\($(hex_slot "$blank_slot")\\): $(jr "$blank" '.reader')\$" "pkcs11-tool -L"
ok list
assert_contains "$OUT" "slot $blank_slot, NOT INITIALISED: set it up with \`ukey init\`" "list (text)"
# info with no KEY picks the only token, blank or not.
ok --json info
json_ok "$OUT" "info --json"
jkeys "$OUT" '.' "$KEY_FIELDS_CERTS objects" "info (blank)"
jeq "$OUT" '.slot' "$blank_slot" "info (blank)"
jeq "$OUT" '.initialized' false "info (blank)"
jeq "$OUT" '.objects' '[]' "info (blank)"
# IDs are stable across processes.
ok --json list
jeq "$OUT" '.keys[0].slot' "$blank_slot" "second list"

step "one initialised Key"
init_key alice "$SO" "$U1"
ok --json list
jeq "$OUT" '.keys | length' 2 "list"
alice=$(key_in "$OUT" alice)
check_key_schema "$alice" "alice"
jeq "$alice" '.initialized' true "alice"
jmatch "$alice" '.serial' '^[0-9a-f]{16}$' "alice"
serial_a=$(jr "$alice" '.serial')
slot_a=$(jr "$alice" '.slot')
check_pin "$alice" 6 6 6 6 "alice"
jeq "$alice" '.certificates' 0 "alice"
jeq "$alice" '.nearest_expiry' null "alice"
# The new blank token SoftHSM2 offers next to it.
check_blank "$(jv "$OUT" '.keys | map(select(.initialized == false)) | .[0]')" "new blank token"
[[ $(jr "$OUT" '.keys | map(select(.initialized == false)) | length') == 1 ]] || fail "expected one blank token"
# Cross-checks: SoftHSM2 itself reports that serial and label; the module
# lists that slot ID with that label.
out=$(p11_direct -L)
assert_matches "$out" "serial num +: $serial_a\$" "SoftHSM2's own token list"
out=$(p11 -L)
assert_contains "$out" "($(hex_slot "$slot_a")): $(jr "$alice" '.reader')" "pkcs11-tool -L (slot ID)"
assert_matches "$out" "token label +: alice\$" "pkcs11-tool -L"
# Text.
ok list
assert_contains "$OUT" "Key 'alice'  serial $serial_a  (softhsm, SoftHSM project SoftHSM v2)" "list (text)"
assert_contains "$OUT" "slot $slot_a, initialised" "list (text)"
assert_contains "$OUT" "user PIN: 6 of 6 tries left; SO PIN: 6 of 6 tries left" "list (text)"
assert_contains "$OUT" "0 certificate(s)" "list (text)"
# info with no KEY: the initialised Key is preferred over the blank one.
ok --json info
jkeys "$OUT" '.' "$KEY_FIELDS_CERTS objects" "info"
jeq "$OUT" '.slot' "$slot_a" "info"
jeq "$OUT" '.serial' "\"$serial_a\"" "info"
check_pin "$OUT" 6 6 6 6 "info"
jeq "$OUT" '.objects' '[]' "info (empty Key)"
# info and list describe the Key alike.
jeq "$OUT" 'del(.objects)' "$alice" "info vs list"

step "a failed PIN shows in list and info"
pin Wrong-Pin-1x
uk pin verify alice --pin-fd 3 3<<<"Wrong-Pin-1x"
expect_rc 5 "wrong PIN"
ok --json list
check_pin "$(key_in "$OUT" alice)" 5 6 6 6 "alice after a wrong PIN"
ok list
assert_contains "$OUT" "user PIN: 5 of 6 tries left; SO PIN: 6 of 6 tries left" "list (text)"
pin Wrong-So-Pin-2y
uk pin verify alice --so --pin-fd 3 3<<<"Wrong-So-Pin-2y"
expect_rc 5 "wrong SO PIN"
ok --json info alice
check_pin "$OUT" 5 6 5 6 "alice after a wrong SO PIN"
ok pin verify alice --pin-fd 3 3<<<"$U1"
ok pin verify alice --so --pin-fd 3 3<<<"$SO"
ok --json info alice
check_pin "$OUT" 6 6 6 6 "alice after the right PINs"

step "certificates and the nearest expiry"
p11 --login --pin "$U1" --keypairgen --key-type EC:prime256v1 --id 0a --label k10 >/dev/null
soft_cert "cert ten" "$T/c10.pem" now 10
soft_cert "cert forty" "$T/c40.pem" now 40
for c in c10:0a c40:0b; do
    openssl x509 -in "$T/${c%:*}.pem" -outform DER -out "$T/${c%:*}.der"
    p11 --login --pin "$U1" --write-object "$T/${c%:*}.der" --type cert --id "${c#*:}" --label "${c%:*}" >/dev/null
done
d_before=$(days_left "$T/c10.pem")
ok --json list
d_after=$(days_left "$T/c10.pem")
alice=$(key_in "$OUT" alice)
jeq "$alice" '.certificates' 2 "alice with 2 certificates"
jkeys "$alice" '.nearest_expiry' "not_after days_left label" "nearest_expiry"
jeq "$alice" '.nearest_expiry.label' '"c10"' "nearest_expiry"
jeq "$alice" '.nearest_expiry.not_after' "\"$(iso_not_after "$T/c10.pem")\"" "nearest_expiry"
d=$(jr "$alice" '.nearest_expiry.days_left')
[[ $d == "$d_before" || $d == "$d_after" ]] || fail "nearest_expiry.days_left is $d, expected $d_before (or $d_after)"
[[ $d -ge 9 && $d -le 10 ]] || fail "nearest_expiry.days_left is $d for a 10-day certificate"
ok list
assert_matches "$OUT" "2 certificate\\(s\\), nearest expiry $(iso_not_after "$T/c10.pem" | cut -c1-10) \\((9|10) days left\\)\$" "list (text)"
# info lists the public objects (not the private key: no login).
ok --json info alice
jeq "$OUT" '.certificates' 2 "info"
jeq "$OUT" '.nearest_expiry.label' '"c10"' "info"
jeq "$OUT" '.objects | length' 3 "info objects"
jeq "$OUT" '[.objects[] | keys] | unique' '[["class","id","label"]]' "info objects"
jeq "$OUT" '[.objects[] | select(.class == "public-key")]' '[{"class":"public-key","id":"0a","label":"k10"}]' "info objects"
jeq "$OUT" '[.objects[] | select(.class == "certificate")] | sort_by(.label)' \
    '[{"class":"certificate","id":"0a","label":"c10"},{"class":"certificate","id":"0b","label":"c40"}]' "info objects"
jeq "$OUT" '[.objects[] | select(.class == "private-key")] | length' 0 "info objects (no login)"
ok info alice
assert_contains "$OUT" "certificate  id 0a  'c10'" "info (text)"
assert_contains "$OUT" "public-key  id 0a  'k10'" "info (text)"
assert_contains "$OUT" "PIN length: 4-255" "info (text)"
# An expired certificate is the nearest expiry, with negative days.
soft_cert "cert expired" "$T/cex.pem" 20200101000000Z 20200201000000Z
openssl x509 -in "$T/cex.pem" -outform DER -out "$T/cex.der"
p11 --login --pin "$U1" --write-object "$T/cex.der" --type cert --id 0c --label cex >/dev/null
ok --json info alice
jeq "$OUT" '.certificates' 3 "info"
jeq "$OUT" '.nearest_expiry.label' '"cex"' "expired certificate"
jeq "$OUT" '.nearest_expiry.not_after' '"2020-02-01T00:00:00Z"' "expired certificate"
jeq "$OUT" '.nearest_expiry.days_left' "$(days_left "$T/cex.pem")" "expired certificate"
ok list
assert_matches "$OUT" "3 certificate\\(s\\), nearest expiry 2020-02-01 \\(EXPIRED [0-9]+ days ago\\)" "list (text)"

step "two initialised Keys"
init_key bob "$SO" "$U2" --tries 4 --so-tries 5
ok --json list
jeq "$OUT" '.keys | length' 3 "list with two Keys"
jeq "$OUT" '[.keys[].slot] | unique | length' 3 "slot IDs are distinct"
bob=$(key_in "$OUT" bob)
alice2=$(key_in "$OUT" alice)
check_key_schema "$bob" "bob"
check_pin "$bob" 4 4 5 5 "bob"
jeq "$bob" '.certificates' 0 "bob"
jeq "$bob" '.nearest_expiry' null "bob"
serial_b=$(jr "$bob" '.serial')
slot_b=$(jr "$bob" '.slot')
[[ $serial_b =~ ^[0-9a-f]{16}$ && $serial_b != "$serial_a" ]] || fail "bob's serial '$serial_b' (alice: $serial_a)"
# alice is unchanged, and keeps her slot ID.
jeq "$alice2" '.slot' "$slot_a" "alice's slot ID after another Key appeared"
jeq "$alice2" '.serial' "\"$serial_a\"" "alice"
jeq "$alice2" '.certificates' 3 "alice"
check_pin "$alice2" 6 6 6 6 "alice"
out=$(p11 -L)
assert_contains "$out" "($(hex_slot "$slot_b")): $(jr "$bob" '.reader')" "pkcs11-tool -L (bob's slot ID)"
assert_contains "$out" "($(hex_slot "$slot_a")): $(jr "$alice2" '.reader')" "pkcs11-tool -L (alice's slot ID)"
out=$(p11_direct -L)
assert_matches "$out" "serial num +: $serial_b\$" "SoftHSM2's own token list"
ok list
assert_contains "$OUT" "Key 'bob'  serial $serial_b" "list (text)"
assert_contains "$OUT" "Key 'alice'  serial $serial_a" "list (text)"
assert_contains "$OUT" "user PIN: 4 of 4 tries left; SO PIN: 5 of 5 tries left" "list (text)"
[[ $(grep -c '^Key ' <<<"$OUT") == 3 ]] || { show list "$OUT"; fail "list (text) should show 3 Keys"; }
ok --json info bob
jeq "$OUT" 'del(.objects)' "$bob" "info bob vs list"
jeq "$OUT" '.objects' '[]' "info bob"

check_no_pin_leaks
