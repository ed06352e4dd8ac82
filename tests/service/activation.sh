#!/usr/bin/env bash
# service.activation: ukeyd started by socket activation, as ukeyd.socket
# does it (activate.pl plays systemd: it holds both sockets and restarts
# ukeyd when it fails). Issue 12 must-show 4's second half:
#   - ukeyd serves on the sockets it was given (and says so);
#   - SIGKILL of ukeyd: an application that connects while it is down waits
#     in the socket's backlog and is served by the restarted ukeyd; the
#     count is intact;
#   - SIGTERM: ukeyd ends and leaves the socket files (systemd's) in place.
. "$(dirname "$0")/lib.sh"
need perl
service_setup
touch "$T/ukeyd.log"
perl "$SERVICE_DIR/activate.pl" "$SOCK" "$PKCS11_SOCK" -- "${UKEYD_WRAP[@]}" "$UKEYD" --log-level debug \
    </dev/null >>"$T/ukeyd.log" 2>&1 &
ACT=$!
on_cleanup "kill_activator"
kill_activator() { kill -TERM "$ACT" 2>/dev/null || true; }
ukeyd_pid() { pgrep -P "$ACT" | head -n 1; }
ukeyd_runs() { [[ -n $(ukeyd_pid) ]] && status_answers; }
wait_for "ukeyd started by the activator" "$DAEMON_WAIT" ukeyd_runs
UKEYD_PID=$(ukeyd_pid)
wait_log "socket from systemd" 10
assert_eq "$(grep -c 'socket from systemd' "$T/ukeyd.log")" 2 "both sockets taken from the activator"

step "served on the passed socket"
assert_eq "$(as $USER_A login Alice user <<<"$BAD")" CKR_PIN_INCORRECT "a wrong PIN as A"
assert_eq "$(as $USER_A labels)" Alice "A sees Alice"

step "ukeyd killed: a client that connects meanwhile is served after the restart"
first=$UKEYD_PID
kill -KILL "$first"
as $USER_B flags Alice >"$T/meanwhile.out" 2>&1 &
client=$!
restarted() { local p; p=$(ukeyd_pid); [[ -n $p && $p != "$first" ]]; }
wait_until 30 restarted || fail "the activator did not restart ukeyd"
UKEYD_PID=$(ukeyd_pid)
wait "$client" || fail "the client that connected while ukeyd was down failed: $(cat "$T/meanwhile.out")"
assert_eq "$(cat "$T/meanwhile.out")" count-low "the waiting client's answer (the earlier wrong PIN counted)"
assert_eq "$(as $USER_A login Alice user <<<"$U1")" CKR_OK "the right PIN after the restart"

step "SIGTERM: ukeyd ends and leaves systemd's socket files"
kill -TERM "$UKEYD_PID"
gone() { ! alive "$UKEYD_PID"; }
wait_until 10 gone || fail "ukeyd did not end on SIGTERM"
[[ -S $SOCK && -S $PKCS11_SOCK ]] || fail "ukeyd removed the socket files systemd owns"
wait "$ACT" || fail "the activator saw ukeyd fail on SIGTERM"
UKEYD_PID=
check_no_pin_in_logs
