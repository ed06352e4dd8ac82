#!/usr/bin/env bash
# service.lockout: one Key served by ukeyd to two unprivileged uids
# (docs/service-mode.md, issue 12 must-show 1, 3, 5 and 7):
#   - who sees what: A and B see Alice, C only the fakecard, D nothing; the
#     same through ukeyd's own socket (`ukey status`);
#   - C_WaitForSlotEvent: the polling form works, the blocking one is not
#     offered (p11-kit's server runs one call at a time per connection);
#   - `ukey pin verify` and `ukey list` as a user go through the service and
#     show the exact count;
#   - 6 wrong PINs spread over A and B lock Alice for both (the right PIN
#     then gets CKR_PIN_LOCKED for both), and exactly 6 C_Login calls
#     reached SoftHSM2;
#   - a user may neither log in as SO nor initialise the Key (and no SO
#     login reaches SoftHSM2); root's SO unlock through the service works
#     for both;
#   - ukeyd refuses to serve a config with two backends on one module;
#   - the audit log records the served application (uid, name), not ukeyd's
#     serving child;
#   - neither user can read the service's state or token store; what a user
#     sets in his own environment (UKEY_CONF, HOME) changes nothing.
. "$(dirname "$0")/lib.sh"
service_setup
service_start

step "who sees which Keys"
assert_eq "$(as $USER_A labels)" "Alice" "uid A sees Alice only"
assert_eq "$(as $USER_B labels)" "Alice" "uid B sees Alice only"
assert_eq "$(as $USER_C labels)" "fakecard" "uid C sees the fakecard only"
assert_eq "$(as $USER_D labels)" "" "uid D, in no backend's users, sees no Key"
assert_eq "$(as 0 labels | sort | tr '\n' ' ')" "Alice fakecard " "root sees every Key"

step "ukeyd's own socket shows each user only the Keys he may use"
wait_first_scan
st_of() { setpriv --reuid="$1" --regid="$1" --clear-groups -- env -i HOME=/ timeout -k 2 30 "$UKEY" --json status \
    --socket "$SOCK" | jq -c '[.status.keys[] | select(.initialized) | .label] | sort'; }
assert_eq "$(st_of $USER_A)" '["Alice"]' "ukey status as A"
assert_eq "$(st_of $USER_C)" '["fakecard"]' "ukey status as C"
assert_eq "$(st_of $USER_D)" '[]' "ukey status as D"
assert_eq "$(st_of 0)" '["Alice","fakecard"]' "ukey status as root"

step "slot events through the service: the polling form only"
assert_eq "$(as $USER_A poll)" CKR_NO_EVENT "C_WaitForSlotEvent(CKF_DONT_BLOCK)"
assert_eq "$(as $USER_A wait)" CKR_FUNCTION_NOT_SUPPORTED "C_WaitForSlotEvent(0), which would hold up the connection"

step "6 wrong PINs over two users lock the Key for both"
# ukey itself, as A: through the service, with the exact count.
uk_as() { local who=$1; shift
    setpriv --reuid="$who" --regid="$who" --clear-groups -- env -i HOME=/ UKEY_CONF="$T/ukey.conf" \
        timeout -k 2 60 "$UKEY" "$@"; }
rc=0; out=$(uk_as $USER_A pin verify Alice --pin-fd 3 3<<<"$BAD" 2>&1) || rc=$?
assert_eq "$rc" 5 "ukey pin verify as A with a wrong PIN: exit code"
assert_contains "$out" "5 tries left before the Key locks" "ukey pin verify as A: the exact count"
for who in $USER_B $USER_A $USER_B; do
    assert_eq "$(as "$who" login Alice user <<<"$BAD")" CKR_PIN_INCORRECT "wrong PIN as uid $who"
done
assert_eq "$(as $USER_A login Alice user <<<"$BAD")" CKR_PIN_INCORRECT "wrong PIN as uid A"
assert_eq "$(as $USER_B flags Alice)" final-try "after 5 wrong PINs B sees the final try"
out=$(uk_as $USER_B --json list) || { show "ukey list as B" "$out"; fail "ukey list as B failed"; }
jeq "$out" '[.keys[] | select(.initialized) | .label]' '["Alice"]' "ukey list as B: the Keys B may use"
jeq "$out" '.keys[] | select(.label == "Alice") | [.backend, .pin.counted_by, .pin.user.tries_left, .pin.user.max_tries]' \
    '["soft","ukey",1,6]' "ukey list as B: Alice's backend, tries left and limit"
rv=$(as $USER_B login Alice user <<<"$BAD")
[[ $rv == CKR_PIN_INCORRECT || $rv == CKR_PIN_LOCKED ]] || fail "6th wrong PIN: $rv"
assert_eq "$(as $USER_A flags Alice)" locked "A sees the Key locked"
assert_eq "$(as $USER_A login Alice user <<<"$U1")" CKR_PIN_LOCKED "right PIN as A once locked"
assert_eq "$(as $USER_B login Alice user <<<"$U1")" CKR_PIN_LOCKED "right PIN as B once locked"
assert_eq "$(logins_reaching_backend)" 6 "C_Login calls that reached SoftHSM2"

step "a user is no admin"
assert_eq "$(printf '%s\n%s\n' "$SO" "$U2" | as $USER_A unlock Alice)" CKR_USER_TYPE_INVALID "SO login as A"
assert_eq "$(as $USER_B initoken Alice <<<"$SO")" CKR_TOKEN_WRITE_PROTECTED "C_InitToken as B"
assert_eq "$(logins_reaching_backend)" 6 "no SO login reached SoftHSM2"
wait_log "uid $USER_A may not log in as SO" 10

step "nothing in a user's own account gives a try back"
for who in $USER_A $USER_B; do
    out=$(setpriv --reuid="$who" --regid="$who" --clear-groups -- ls "$T/state" 2>&1) \
        && fail "uid $who can list the service's state: $out"
    out=$(setpriv --reuid="$who" --regid="$who" --clear-groups -- ls "$T/tokens" 2>&1) \
        && fail "uid $who can list the token store: $out"
done
# His own UKEY_CONF and HOME reach only his own process, which does not
# load ukey: the service's count stands.
mkdir -m 0755 "$T/home-a" && chown $USER_A "$T/home-a"
printf 'state_dir = "%s"\n[[backend]]\nname = "soft"\nmodule = "%s"\n' "$T/home-a" "$SOFTHSM_MODULE" >"$T/home-a/ukey.conf"
rv=$(setpriv --reuid=$USER_A --regid=$USER_A --clear-groups -- env -i HOME="$T/home-a" \
    UKEY_CONF="$T/home-a/ukey.conf" P11_KIT_SERVER_ADDRESS="unix:path=$PKCS11_SOCK" \
    "$SVCCLIENT" "$P11_CLIENT" login Alice user <<<"$U1")
assert_eq "$rv" CKR_PIN_LOCKED "right PIN as A with his own UKEY_CONF and HOME"

step "root's SO unlock through the service works for both users"
assert_eq "$(printf '%s\n%s\n' "$SO" "$U2" | as 0 unlock Alice)" CKR_OK "SO unlock as root"
assert_eq "$(as $USER_A login Alice user <<<"$U2")" CKR_OK "A logs in with the new PIN"
assert_eq "$(as $USER_B login Alice user <<<"$U2")" CKR_OK "B logs in with the new PIN"
assert_eq "$(as $USER_A flags Alice)" ok "the count is full again"

step "the audit log names the applications served, not the serving children"
AUD=$T/state/audit/audit.log
grep -q "\"kind\":\"login-failed\".*\"uid\":$USER_A,\"exe\":\"\[ukey\]\"" "$AUD" \
    || fail "no login-failed record of uid A's ukey in $AUD"
grep -q "\"kind\":\"login-failed\".*\"uid\":$USER_B,\"exe\":\"\[svcclient\]\"" "$AUD" \
    || fail "no login-failed record of uid B's svcclient in $AUD"
grep -q "\"uid\":$SVC_UID," "$AUD" && fail "a record names the service user instead of the application"

check_no_pin_in_logs
daemon_stop

step "a config with two backends on one module is refused: each Key would have two counts"
sed -e 's|^module = "'"$FAKECARD_MODULE"'"|module = "'"$SPY_PATH"'"|' "$T/ukey.conf" >"$T/twice.conf"
chmod 0644 "$T/twice.conf"
rc=0; out=$(timeout -k 2 30 "${UKEYD_WRAP[@]}" "$UKEYD" -c "$T/twice.conf" </dev/null 2>&1) || rc=$?
assert_eq "$rc" 1 "ukeyd's exit code"
assert_contains "$out" "backends 'soft' and 'card' both load $SPY_PATH" "ukeyd says why"
