#!/usr/bin/env bash
# ukey doctor, P2.hardware-error: a Key whose backend sees a card in the
# reader but cannot read its token. The test backend fakecard is made to
# answer each fault through its state file (tests/backends/README.md):
# CKR_DEVICE_ERROR, CKR_DEVICE_MEMORY, CKR_DEVICE_REMOVED and
# CKR_TOKEN_NOT_RECOGNIZED for C_GetTokenInfo, in text and --json; the same
# card healthy again gives no finding.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/doctor_lib.sh"
: "${FAKECARD_MODULE:?FAKECARD_MODULE must name libukey-test-fakecard.so}"
cli_setup "
[[backend]]
name = \"fakecard\"
module = \"$FAKECARD_MODULE\"
pin_counter = \"token\""
export FAKECARD_STATE=$T/fakecard.state

# card_state [FAULT]: a fresh card, or one whose token answers FAULT.
card_state() {
    printf 'fakecard 1 user_left=3 so_left=3 user_pin=card-user-2468 so_pin=card-so-13579%s\n' "${1:+ fault=$1}" \
        >"$FAKECARD_STATE"
}

step "a healthy card: no hardware error"
card_state
uk --json doctor
DOC=$OUT
json_ok "$DOC" "doctor"
no_finding P2.hardware-error
jeq "$DOC" '[.findings[] | select(.id == "setup.module-fails")] | length' 0 "healthy card"

for fault in device_error:CKR_DEVICE_ERROR device_memory:CKR_DEVICE_MEMORY; do
    step "a card that answers ${fault#*:}"
    card_state "${fault%%:*}"
    doctor 18
    w=$(finding P2.hardware-error problem)
    assert_contains "$w" "the Key in the reader 'fakecard reader' (backend 'fakecard') reports a hardware error (${fault#*:}" "${fault#*:}"
    assert_contains "$w" "): no application can use it" "${fault#*:}"
    jeq "$DOC" '.findings[] | select(.id == "P2.hardware-error") | .key' null "not a Key by name"
    # It is the Key's fault, not ukey's module's.
    no_finding setup.module-fails
done

step "a card that goes away while being read"
card_state device_removed
doctor 18
w=$(finding P2.hardware-error problem)
assert_contains "$w" "went away while it was being read (CKR_DEVICE_REMOVED" "removed"

step "a card its driver does not recognise (no pcscd reader shows it)"
card_state token_not_recognized
doctor 18
w=$(finding P2.hardware-error problem)
assert_contains "$w" "is not one its driver knows (CKR_TOKEN_NOT_RECOGNIZED" "not recognised"

step "the card healthy again"
card_state
uk --json doctor
DOC=$OUT
no_finding P2.hardware-error

finish
