#!/usr/bin/env bash
# service.policy: the policy an admin puts on a Key holds for every user of
# the service (issue 12 must-show 7). The admin, as the service user and
# straight through the module (docs/service-mode.md, "The ukey command"),
# initialises Alice with a try limit of 3 and a transport PIN. Then, through
# the service:
#   - a user's `ukey list` shows the limit and that the PIN must be changed;
#   - a login with the transport PIN is held back for both users (what needs
#     it answers CKR_PIN_EXPIRED);
#   - one user changes it (`ukey pin change`); the other then logs in with
#     the new PIN;
#   - 3 wrong PINs over both users lock the Key for both.
. "$(dirname "$0")/lib.sh"
service_setup
service_start

step "the admin sets a limit of 3 and a transport PIN, as the service user"
TRANSPORT=111111
pin "$TRANSPORT"
rc=0
out=$(printf '%s\n' "$SO" | setpriv --reuid=$SVC_UID --regid=$SVC_UID --clear-groups -- env -i HOME=/ \
    UKEY_CONF="$T/ukey.conf" SOFTHSM2_CONF="$SOFTHSM2_CONF" SPY_MODULE="$SPY_MODULE" SPY_LOG="$T/spy.log" \
    FAKECARD_STATE="$FAKECARD_STATE" UKEY_MODULE="$UKEY_MODULE" timeout -k 2 60 "$UKEY" init Alice --label Alice \
    --tries 3 --transport-pin -y --so-pin-fd 0 --pin-fd 3 3<<<"$TRANSPORT" 2>&1) || rc=$?
((rc == 0)) || { show "ukey init as the service user" "$out"; fail "the admin's ukey init failed ($rc)"; }

uk_as() { local who=$1; shift
    setpriv --reuid="$who" --regid="$who" --clear-groups -- env -i HOME=/ UKEY_CONF="$T/ukey.conf" \
        timeout -k 2 60 "$UKEY" "$@"; }

step "every user sees the policy and is held to it"
out=$(uk_as $USER_B --json list) || { show "ukey list as B" "$out"; fail "ukey list as B failed"; }
jeq "$out" '.keys[] | select(.label == "Alice") | [.pin.user.max_tries, .pin.user.tries_left, .pin.must_change]' \
    '[3,3,true]' "B's ukey list: the limit and the transport-PIN mark"
# The login with the transport PIN is held back: what needs it answers
# CKR_PIN_EXPIRED until the PIN is changed (docs/pin-policy.md).
assert_eq "$(as $USER_A use Alice <<<"$TRANSPORT")" "CKR_OK CKR_PIN_EXPIRED" "A with the transport PIN"
assert_eq "$(as $USER_B use Alice <<<"$TRANSPORT")" "CKR_OK CKR_PIN_EXPIRED" "B with the transport PIN"

step "A changes the transport PIN; B logs in with the new one"
rc=0; out=$(uk_as $USER_A pin change Alice --pin-fd 3 --new-pin-fd 4 3<<<"$TRANSPORT" 4<<<"$U2" 2>&1) || rc=$?
((rc == 0)) || { show "ukey pin change as A" "$out"; fail "A's ukey pin change failed ($rc)"; }
assert_eq "$(as $USER_B use Alice <<<"$U2")" "CKR_OK CKR_OK" "B with A's new PIN"

step "3 wrong PINs over both users lock the Key for both"
assert_eq "$(as $USER_A login Alice user <<<"$BAD")" CKR_PIN_INCORRECT "wrong PIN 1 (A)"
assert_eq "$(as $USER_B login Alice user <<<"$BAD")" CKR_PIN_INCORRECT "wrong PIN 2 (B)"
assert_eq "$(as $USER_B flags Alice)" final-try "B sees the final try"
rv=$(as $USER_A login Alice user <<<"$BAD")
[[ $rv == CKR_PIN_INCORRECT || $rv == CKR_PIN_LOCKED ]] || fail "wrong PIN 3 (A): $rv"
assert_eq "$(as $USER_B login Alice user <<<"$U2")" CKR_PIN_LOCKED "B's right PIN once locked"
assert_eq "$(as $USER_A login Alice user <<<"$U2")" CKR_PIN_LOCKED "A's right PIN once locked"
check_no_pin_in_logs
daemon_stop
