#!/usr/bin/env bash
# service.kill: killing the service's processes gives no try back (issue 12
# must-show 4).
#   1. A serving child killed (SIGKILL) in the middle of a login, KILLS
#      times (default 102: 17 times the 6 tries): the spy stops each serving
#      child once its PIN is on the way to SoftHSM2 (SPY_STOP_IN_LOGIN), the
#      test kills it there. Every kill costs a try: the Key shows one try
#      less each time and locks after 6; the right PIN is then refused for
#      both users without reaching SoftHSM2. The admin unlocks it as the
#      service user, straight through the module (docs/service-mode.md).
#   2. The application killed (SIGKILL) while its wrong PIN is on the way:
#      the serving child finishes the attempt, the try counts.
#   3. The whole ukeyd killed (SIGKILL) while clients hold sessions: a
#      served application keeps its connection (its serving child lives
#      on), a new one sees no Key (p11-kit-client's answer while its server
#      is unreachable); a restarted ukeyd serves again, and the count is
#      what it was.
. "$(dirname "$0")/lib.sh"
service_setup
export SPY_STOP_IN_LOGIN=1
service_start

KILLS=${SERVICE_KILLS:-102}
logins() { grep -c '^login' "$T/spy.log" || true; }
answers() { grep -c '^rv' "$T/spy.log" || true; }
# the serving children of ukeyd that stopped themselves in C_Login
stopped_child() { local p; for p in $(pgrep -P "$UKEYD_PID" -f -- '--serve-pkcs11'); do
    [[ $(awk '{print $3}' "/proc/$p/stat" 2>/dev/null) == T ]] && { echo "$p"; return 0; }; done; return 1; }
has_stopped_child() { stopped_child >/dev/null; }
# unlock as the service user, through the module itself (not the service)
admin_unlock() {
    printf '%s\n%s\n' "$SO" "$U1" | setpriv --reuid=$SVC_UID --regid=$SVC_UID --clear-groups -- \
        env -i UKEY_CONF="$T/ukey.conf" SOFTHSM2_CONF="$SOFTHSM2_CONF" SPY_MODULE="$SPY_MODULE" \
        SPY_LOG="$T/spy.log" FAKECARD_STATE="$FAKECARD_STATE" "$SVCCLIENT" "$UKEY_MODULE" unlock Alice
}
expect_state() { # KILLS_IN_CYCLE
    case $1 in 0) echo ok ;; 5) echo final-try ;; 6) echo locked ;; *) echo count-low ;; esac
}

step "$KILLS serving children killed in the middle of a login"
for ((k = 1; k <= KILLS; k++)); do
    n=$(((k - 1) % 6 + 1)) # this kill's place in its cycle of 6
    before=$(logins)
    who=$USER_A; ((k % 2)) || who=$USER_B
    as "$who" hold Alice <<<"$U1" >"$T/hold.out" 2>&1 &
    client=$!
    wait_for "kill $k: the serving child stopped in C_Login" 30 has_stopped_child
    kill -KILL "$(stopped_child)"
    wait "$client" || true
    grep -qx CKR_OK "$T/hold.out" && fail "kill $k: the client's login succeeded"
    assert_eq "$(logins)" $((before + 1)) "kill $k: one PIN on its way to SoftHSM2"
    assert_eq "$(as $USER_A flags Alice)" "$(expect_state $n)" "kill $k: $n tries taken in this cycle"
    if ((n == 6)); then
        assert_eq "$(timeout 20 setpriv --reuid=$USER_B --regid=$USER_B --clear-groups -- env -i \
            P11_KIT_SERVER_ADDRESS="unix:path=$PKCS11_SOCK" "$SVCCLIENT" "$P11_CLIENT" login Alice user <<<"$U1")" \
            CKR_PIN_LOCKED "kill $k: the right PIN once locked"
        assert_eq "$(logins)" $((before + 1)) "kill $k: a locked Key's login reaches no backend"
        assert_eq "$(admin_unlock)" CKR_OK "kill $k: the admin's unlock"
        assert_eq "$(as $USER_A flags Alice)" ok "kill $k: unlocked"
    fi
done
# SoftHSM2 answered none of the killed logins (only the admin's SO logins).
assert_eq "$(answers)" $((KILLS / 6)) "SoftHSM2 answered only the admin's unlocks"
log "$KILLS kills, each one try"

step "the application killed while its wrong PIN is on the way: the try still counts"
before=$(logins)
as $USER_A hold Alice <<<"$BAD" >"$T/hold.out" 2>&1 &
client=$!
wait_for "the serving child stopped in C_Login" 30 has_stopped_child
child=$(stopped_child)
# svcclient itself: the child of timeout, which setpriv and env became
pkill -KILL -P "$client" 2>/dev/null || fail "no application process to kill"
kill -KILL "$client" 2>/dev/null || true
wait "$client" 2>/dev/null || true
kill -CONT "$child" # the serving child goes on: SoftHSM2 judges the PIN
child_gone() { ! kill -0 "$child" 2>/dev/null; }
wait_until 30 child_gone || fail "the serving child did not end once its application was gone"
assert_eq "$(grep -c '^rv a0' "$T/spy.log")" 1 "SoftHSM2 judged the PIN wrong (CKR_PIN_INCORRECT)"
assert_eq "$(as $USER_B flags Alice)" count-low "the wrong PIN of the killed application counted"
assert_eq "$(admin_unlock)" CKR_OK "the admin's unlock"

step "the whole ukeyd killed while an application holds a session"
daemon_stop
unset SPY_STOP_IN_LOGIN
service_start
mkfifo "$T/pin.fifo"
as $USER_A hold Alice <"$T/pin.fifo" >"$T/held.out" 2>&1 &
held=$!
exec 4>"$T/pin.fifo"
wait_for "the held client's session" 30 grep -qx ready "$T/held.out"
kill -KILL "$UKEYD_PID"
wait "$UKEYD_PID" 2>/dev/null || true
UKEYD_PID=
# p11-kit-client answers C_Initialize and lists no slot while its server
# cannot be reached.
assert_eq "$(as $USER_B labels 2>&1)" "" "a new application while ukeyd is down sees no Key"
printf '%s\n' "$BAD" >&4
exec 4>&-
wait "$held" || true
assert_eq "$(tail -n 1 "$T/held.out")" CKR_PIN_INCORRECT "the held application's login, served on"
service_start
assert_eq "$(as $USER_B labels)" Alice "a new application once ukeyd is back"
assert_eq "$(as $USER_B flags Alice)" count-low "the wrong PIN of the held application counted"
assert_eq "$(as $USER_A login Alice user <<<"$U1")" CKR_OK "the right PIN"
check_no_pin_in_logs
daemon_stop
