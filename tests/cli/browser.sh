#!/usr/bin/env bash
# ukey browser status|enable|disable against real NSS databases, as Chromium
# (~/.pki/nssdb, made by `enable` when the browser never ran) and Firefox (a
# profile's database) keep them: text and --json; after `enable` NSS itself
# (certutil, as the browser would) lists the Key's certificate; a stale
# registration (ukey moved) is replaced; a second `enable` changes nothing;
# `disable` removes ukey and nothing else.
. "$(dirname "$0")/lib.sh"
cli_setup
need certutil modutil

new_pins SO U1
init_key alice "$SO" "$U1"
ok key generate alice --type ec-p256 --id 31 --label "login" --pin-fd 3 3<<<"$U1"
ok csr alice --key 31 --subject "/CN=Login" --out "$T/login.csr" --pin-fd 3 3<<<"$U1"
issue_cert "$T/login.csr" "$T/login.pem" now 100
ok cert write alice --file "$T/login.pem" --label "login" --pin-fd 3 3<<<"$U1"

FF=$T/.mozilla/firefox/x1.default-esr
CH=$T/.pki/nssdb
mkdir -p "$FF"
certutil -N -d "sql:$FF" --empty-password || fail "certutil -N (Firefox profile)"
# Another module Firefox loads, which disable must leave alone (NSS's own
# trust module, as Firefox registers it).
TRUST=$(ls /usr/lib/*/libnssckbi.so 2>/dev/null | head -n1)
if [[ -n $TRUST ]]; then
    ukc modutil -force -dbdir "sql:$FF" -add "Builtin Roots" -libfile "$TRUST" >/dev/null 2>&1 \
        || fail "modutil -add Builtin Roots"
fi
MODULE=$(readlink -f "$UKEY_MODULE")
# modutil loads ukey's module when it adds it.
uk_runs_nss_tools
# listed DIR yes|no: whether NSS lists the Key's certificate there.
listed() { nss_lists "$1" "alice:login" "$2"; }
# state JSON DIR: the "ukey" field of DIR's database.
state() { jq -r --arg d "$2" '.browsers[] | select(.dir == $d) | .ukey' <<<"$1"; }

step "status: Firefox's profile without ukey, Chromium never started"
uk --json browser status
expect_rc 0 "ukey --json browser status"
jeq "$OUT" '.module' "\"$MODULE\"" "status: the module"
jeq "$OUT" '[.browsers[].browser]' "[\"Firefox profile 'x1.default-esr'\",\"Chromium (~/.pki/nssdb)\"]" "status: browsers"
assert_eq "$(state "$OUT" "$FF")" disabled "Firefox before enable"
assert_eq "$(state "$OUT" "$CH")" disabled "Chromium before enable"
jeq "$OUT" "[.browsers[] | select(.dir == \"$CH\") | .exists]" '[false]' "Chromium has no database yet"
ok browser status
assert_contains "$OUT" "Firefox profile 'x1.default-esr': ukey not enabled [$FF]" "status text (Firefox)"
assert_contains "$OUT" "Chromium (~/.pki/nssdb): no database yet (the browser was never started) [$CH]" "status text (Chromium)"
listed "$FF" no

step "enable: both databases load ukey; NSS lists the Key's certificate there"
uk --json browser enable
expect_rc 0 "ukey --json browser enable"
jeq "$OUT" '[.browsers[] | [.ukey, .changed]]' '[["enabled",true],["enabled",true]]' "enable"
[[ -f $CH/pkcs11.txt ]] || fail "enable did not make Chromium's database"
listed "$FF" yes
listed "$CH" yes
ok --json browser status
assert_eq "$(state "$OUT" "$FF")" enabled "Firefox after enable"
assert_eq "$(state "$OUT" "$CH")" enabled "Chromium after enable"
jeq "$OUT" "[.browsers[] | select(.dir == \"$FF\") | .modules[] | select(.name == \"ukey\") | .library]" "[\"$MODULE\"]" "the library NSS was given"

step "a second enable changes nothing"
ok browser enable
assert_contains "$OUT" "Firefox profile 'x1.default-esr': ukey enabled [$FF]"$'\n' "second enable (text)"
assert_contains "$OUT" "Restart the browsers" "second enable (text)"
ok --json browser enable
jeq "$OUT" '[.browsers[].changed]' '[false,false]' "second enable"

step "a stale registration (ukey moved) is replaced"
mkdir -p "$T/old"
cp "$UKEY_MODULE" "$T/old/libukey-pkcs11.so"
ukc modutil -force -dbdir "sql:$CH" -delete ukey >/dev/null 2>&1 || fail "modutil -delete"
ukc modutil -force -dbdir "sql:$CH" -add "ukey old" -libfile "$T/old/libukey-pkcs11.so" >/dev/null 2>&1 || fail "modutil -add old"
rm "$T/old/libukey-pkcs11.so"
ok --json browser status
assert_eq "$(state "$OUT" "$CH")" stale "Chromium with a moved module"
ok browser status
assert_contains "$OUT" "Chromium (~/.pki/nssdb): ukey registered at a path that is not this ukey's module (moved or reinstalled)" "stale (text)"
ok --json browser enable
jeq "$OUT" "[.browsers[] | select(.dir == \"$CH\") | [.ukey, .changed]]" '[["enabled",true]]' "stale replaced"
grep -q "old/libukey-pkcs11" "$CH/pkcs11.txt" && fail "the stale entry is still in Chromium's pkcs11.txt"
listed "$CH" yes

step "disable removes ukey and nothing else"
uk --json browser disable
expect_rc 0 "ukey --json browser disable"
jeq "$OUT" '[.browsers[] | [.ukey, .changed]]' '[["disabled",true],["disabled",true]]' "disable"
listed "$FF" no
listed "$CH" no
if [[ -n $TRUST ]]; then
    grep -q "library=$TRUST" "$FF/pkcs11.txt" || fail "disable removed Firefox's Builtin Roots module"
fi
ok --json browser disable
jeq "$OUT" '[.browsers[].changed]' '[false,false]' "second disable"

step "no HOME: a clear error"
UK_AS=(env HOME=)
uk browser status
expect_rc 10 "ukey browser status without HOME"
assert_contains "$ERR" "HOME is not set to a folder" "without HOME"
UK_AS=()

check_no_pin_leaks
finish
