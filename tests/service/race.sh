#!/usr/bin/env bash
# service.race: wrong PINs from 8 processes of two uids at once, 3 threads
# each, through ukeyd (issue 12 must-show 2). As in pin.race, every racer
# has its serving child started and its sessions open before a gate lets
# them all go (SoftHSM2 itself trips over a process that starts while
# others log in). In each of 20 rounds exactly 6
# C_Login calls reach SoftHSM2 (the spy counts them), every other attempt
# is refused without reaching it, and the Key ends locked for both users;
# root's SO unlock through the service then starts the next round.
. "$(dirname "$0")/lib.sh"
service_setup
service_start

ROUNDS=${SERVICE_RACE_ROUNDS:-20}
all_ready() { (($(cat "$T"/race.* 2>/dev/null | grep -c '^ready$') == 8)); }
# No serving child of the last round still running (finalising SoftHSM2).
no_children() { ! pgrep -P "$UKEYD_PID" -f -- '--serve-pkcs11' >/dev/null; }
for ((round = 1; round <= ROUNDS; round++)); do
    before=$(logins_reaching_backend)
    rm -f "$T/gate"
    pids=()
    for i in 1 2 3 4 5 6 7 8; do
        who=$USER_A; ((i % 2)) || who=$USER_B
        as "$who" logins Alice 3 "$T/gate" <<<"$BAD" >"$T/race.$i" 2>&1 &
        pids+=($!)
    done
    wait_for "8 racers ready" 60 all_ready
    touch "$T/gate"
    for p in "${pids[@]}"; do wait "$p" || fail "round $round: a client failed: $(cat "$T"/race.*)"; done
    sed -i '/^ready$/d' "$T"/race.*
    reached=$(($(logins_reaching_backend) - before))
    incorrect=$(cat "$T"/race.* | grep -c '^CKR_PIN_INCORRECT$' || true)
    locked=$(cat "$T"/race.* | grep -c '^CKR_PIN_LOCKED$' || true)
    other=$(cat "$T"/race.* | grep -v -e '^CKR_PIN_INCORRECT$' -e '^CKR_PIN_LOCKED$' || true)
    [[ -z $other ]] || fail "round $round: unexpected answers: $other"
    ((reached == 6)) || fail "round $round: $reached C_Login calls reached SoftHSM2, expected exactly 6"
    ((incorrect + locked == 24)) || fail "round $round: $incorrect + $locked answers for 24 attempts"
    ((incorrect <= 6)) || fail "round $round: $incorrect CKR_PIN_INCORRECT answers for 6 tries"
    assert_eq "$(as $USER_A flags Alice)" locked "round $round: locked for A"
    assert_eq "$(as $USER_B flags Alice)" locked "round $round: locked for B"
    assert_eq "$(printf '%s\n%s\n' "$SO" "$U1" | as 0 unlock Alice)" CKR_OK "round $round: SO unlock as root"
    rm -f "$T"/race.*
    wait_for "the serving children of round $round to end" 30 no_children
done
log "$ROUNDS rounds: 6 logins reached SoftHSM2 in each"
check_no_pin_in_logs
daemon_stop
