#!/usr/bin/env bash
# The audit log as the module writes it (layer_audit.cpp, docs/audit.md):
# one record for each event kind, through ukey and through pkcs11-tool, with
# the right user type, result and executable; `ukey audit verify` accepts
# the chain the two programs wrote together; no PIN anywhere in it.
. "$(dirname "$0")/lib.sh"
need pkcs11-tool openssl
cli_setup

new_pins SO U1 U2 U3 WRONG

# kinds [ukey audit show ARGS]: the kinds of the records, in order, one line.
kinds() {
    ok --json audit show "$@"
    jr "$OUT" '[.records[].kind] | join(" ")'
}
# last KIND: the newest record of that kind, as JSON.
last() {
    ok --json audit show --kind "$1"
    jv "$OUT" '.records[-1]'
}

step "ukey init: the token initialised, its user PIN set"
init_key alice "$SO" "$U1"
ok --json audit show
jeq "$OUT" '[.records[].kind]' '["init-token","login","init-pin"]' "records of ukey init"
R=$(last init-token)
jeq "$R" '.rv' 0 "init-token"
jeq "$R" '.user_type' '"so"' "init-token"
jmatch "$R" '.detail' '^label "alice"$' "init-token"
jmatch "$R" '.exe' '/ukey$' "init-token"
jeq "$R" '.uid' "$(id -u)" "init-token"
R=$(last init-pin)
jmatch "$R" '.key' "serial $SERIAL" "init-pin names the Key"

step "ukey pin verify: a right and a wrong PIN"
ok pin verify alice --pin-fd 3 3<<<"$U1"
uk pin verify alice --pin-fd 3 3<<<"$WRONG"
[[ $RC -ne 0 ]] || fail "a wrong PIN verified"
R=$(last login-failed)
jeq "$R" '.ckr' '"CKR_PIN_INCORRECT"' "wrong PIN"
jeq "$R" '.user_type' '"user"' "wrong PIN"

step "the PIN locked by its last try, then unlocked with the SO PIN"
for _ in 1 2 3 4 5; do uk pin verify alice --pin-fd 3 3<<<"$WRONG"; done
R=$(last pin-locked)
jeq "$R" '.user_type' '"user"' "pin-locked"
jmatch "$R" '.key' "serial $SERIAL" "pin-locked"
assert_eq "$(kinds --kind pin-locked | wc -w)" 1 "one pin-locked record"
ok pin unlock alice --so-pin-fd 3 --new-pin-fd 4 3<<<"$SO" 4<<<"$U2"
R=$(last pin-unlocked)
jeq "$R" '.user_type' '"so"' "pin-unlocked"
jeq "$R" '.rv' 0 "pin-unlocked"

step "ukey pin change"
ok pin change alice --pin-fd 3 --new-pin-fd 4 3<<<"$U2" 4<<<"$U3"
R=$(last set-pin)
jeq "$R" '.rv' 0 "set-pin"
jeq "$R" '.user_type' '"user"' "set-pin"

step "ukey key generate"
ok key generate alice --type ec-p256 --label audit-ec --pin-fd 3 3<<<"$U3"
R=$(last key-generated)
jmatch "$R" '.detail' 'audit-ec' "key-generated"
jmatch "$R" '.exe' '/ukey$' "key-generated"

step "pkcs11-tool: a wrong login, a key pair, a certificate written and deleted"
out=$(ukc pkcs11-tool --module "$UKEY_MODULE" --token-label alice --login --pin "$WRONG" --list-objects 2>&1) &&
    fail "pkcs11-tool logged in with a wrong PIN: $out"
R=$(last login-failed)
jmatch "$R" '.exe' 'pkcs11-tool$' "login-failed through pkcs11-tool"
p11 --token-label alice --login --pin "$U3" --keypairgen --key-type EC:prime256v1 --label p11-ec --id 0a0b >/dev/null
R=$(last key-generated)
jmatch "$R" '.detail' 'p11-ec' "key-generated through pkcs11-tool"
jmatch "$R" '.exe' 'pkcs11-tool$' "key-generated through pkcs11-tool"
R=$(last login)
jmatch "$R" '.exe' 'pkcs11-tool$' "login through pkcs11-tool"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/k.pem" -subj /CN=audit \
    -days 2 -outform DER -out "$T/c.der" 2>/dev/null || fail "openssl req"
p11 --token-label alice --login --pin "$U3" --write-object "$T/c.der" --type cert --label p11-cert --id 0c0d >/dev/null
R=$(last object-created)
jmatch "$R" '.detail' '^certificate "p11-cert"$' "object-created"
p11 --token-label alice --login --pin "$U3" --delete-object --type cert --id 0c0d >/dev/null
R=$(last object-destroyed)
jmatch "$R" '.detail' '^certificate "p11-cert"$' "object-destroyed"
jeq "$R" '.rv' 0 "object-destroyed"

step "every kind is there, the chain of both programs verifies, and no PIN is in it"
ok --json audit show
for k in login login-failed pin-locked pin-unlocked set-pin init-pin init-token key-generated object-created \
    object-destroyed; do
    jeq "$OUT" "[.records[] | select(.kind == \"$k\")] | length > 0" true "a $k record"
done
ok --json audit verify
jeq "$OUT" '.ok' true "verify"
finish
