#!/usr/bin/env bash
# PINs stay secret: never on ukey's command line (/proc/PID/cmdline read while
# ukey waits for its PIN on a pipe), never in anything ukey prints (stdout,
# stderr, --json, success or failure, with the log at debug level), never in
# the state folder; a PIN typed on the command line by mistake is refused
# without being echoed; core dumps are off while a PIN is in memory.
. "$(dirname "$0")/lib.sh"
cli_setup
export UKEY_LOG_LEVEL=debug   # the log must not carry a PIN either

new_pins SO SO2 U1 U2 U3 WRONG WRONG_SO
ARGV_PIN=Argv-sec-Xy03
# ARGV_PIN is on the test's own command lines (a user's mistake): it is
# checked by its own step, not by the transcript check.

# on_pipe "PIN LINES" ARGS...: runs ukey ARGS with descriptor 3 reading a
# FIFO; while ukey waits on it, checks that no PIN is in its command line (and
# that core dumps are off), then writes the PIN lines and lets it finish.
# Sets OUT, ERR, RC like uk().
on_pipe() {
    local lines=$1; shift
    local fifo=$T/pin.fifo pid tpid i p c state cmdline wchan=
    rm -f "$fifo"
    mkfifo -m 600 "$fifo"
    exec 7<>"$fifo"    # a writer exists: ukey's open of the FIFO does not block
    setsid timeout --kill-after=5 "$UKEY_TEST_TIMEOUT" "$UKEY" "$@" \
        3<"$fifo" </dev/null >"$T/uk.out" 2>"$T/uk.err" &
    tpid=$!
    # ukey is the child of timeout, which is $tpid or (if setsid had to
    # fork) its child.
    pid=
    for ((i = 0; i < 200; i++)); do
        for p in $(pgrep -P "$tpid"; for c in $(pgrep -P "$tpid"); do pgrep -P "$c"; done); do
            [[ $(cat "/proc/$p/comm" 2>/dev/null) == ukey ]] && { pid=$p; break; }
        done
        [[ -n $pid ]] && break
        sleep 0.05
    done
    [[ -n $pid ]] || fail "cannot find the ukey process of: ukey $*"
    # Wait until it blocks reading the PIN: wchan (where readable), else
    # sleeping for a while (it cannot go on without the PIN).
    for ((i = 0; i < 200; i++)); do
        state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null || echo gone)
        [[ $state == gone ]] && fail "ukey $* ended before it got its PIN: $(cat "$T/uk.err")"
        wchan=$(cat "/proc/$pid/wchan" 2>/dev/null || true)
        [[ $wchan == *pipe_read ]] && break   # pipe_read, anon_pipe_read (newer kernels)
        [[ -z $wchan && $state == S && $i -ge 20 ]] && break
        sleep 0.05
    done
    cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline")
    assert_contains "$cmdline" "$1" "/proc/$pid/cmdline"     # it is ukey's
    printf '%s\n' "\$ cmdline of ukey waiting for its PIN (wchan '$wchan'): $cmdline" >>"$T/cmdlines"
    grep -q '^Max core file size *0 *0 ' "/proc/$pid/limits" \
        || fail "core dumps are not off while ukey holds a PIN: $(grep core "/proc/$pid/limits")"
    printf '%s\n' "$lines" >&7
    exec 7>&-
    RC=0
    wait "$tpid" || RC=$?
    OUT=$(cat "$T/uk.out")
    ERR=$(cat "$T/uk.err")
    { printf '$ ukey %s\n' "$*"; cat "$T/uk.out" "$T/uk.err"; printf '(exit %s)\n' "$RC"; } >>"$T/transcript"
}

step "PINs on a pipe: not in /proc/PID/cmdline while ukey waits for them"
on_pipe "$SO"$'\n'"$U1" init --label alice --so-pin-fd 3 --pin-fd 3
expect_rc 0 "init (PINs on a FIFO)"
on_pipe "$U1" pin verify alice --pin-fd 3
expect_rc 0 "pin verify (PIN on a FIFO)"
assert_eq "$OUT" "The PIN is right." "pin verify"
on_pipe "$WRONG" --json pin verify alice --pin-fd 3
expect_rc 5 "wrong PIN (on a FIFO)"
on_pipe "$U1"$'\n'"$U2" --json pin change alice --pin-fd 3 --new-pin-fd 3
expect_rc 0 "pin change (PINs on a FIFO)"
on_pipe "$SO"$'\n'"$U3" pin unlock alice --so-pin-fd 3 --new-pin-fd 3
expect_rc 0 "pin unlock (PINs on a FIFO)"
on_pipe "$SO"$'\n'"$SO2" pin change alice --so --pin-fd 3 --new-pin-fd 3
expect_rc 0 "pin change --so (PINs on a FIFO)"
on_pipe "$SO2"$'\n'"$U1" --json init alice --yes --label alice --so-pin-fd 3 --pin-fd 3
expect_rc 0 "re-init (PINs on a FIFO)"
on_pipe "$U1" --json key generate alice --type ec-p256 --label sec --id 5e --pin-fd 3
expect_rc 0 "key generate (PIN on a FIFO)"
on_pipe "$U1" key list alice --pin-fd 3
expect_rc 0 "key list (PIN on a FIFO)"
on_pipe "$U1" csr alice --key 5e --subject /CN=sec --out "$T/sec.csr" --pin-fd 3
expect_rc 0 "csr (PIN on a FIFO)"
# Every PIN was checked against every command line.
for p in "${PINS[@]}"; do
    if grep -qF -- "$p" "$T/cmdlines"; then cat "$T/cmdlines" >&2; fail "a PIN is in ukey's command line"; fi
done
[[ $(wc -l <"$T/cmdlines") == 10 ]] || fail "expected 10 command lines checked"
grep -q "wchan .\(anon_\)\?pipe_read" "$T/cmdlines" || log "(wchan not readable here: waited for the sleeping state instead)"

step "every command, text and --json, success and failure (the transcript is checked at the end)"
for j in "" --json; do
    ok $j list
    ok $j info alice
    ok $j key generate alice --type ec-p256 --label "sec$j" --pin-fd 3 3<<<"$U1"
    ok $j key list alice --pin-fd 3 3<<<"$U1"
    uk $j key list alice --pin-fd 3 3<<<"$WRONG"; expect_rc 5
    ok $j cert list alice
    ok $j pin verify alice --pin-fd 3 3<<<"$U1"
    uk $j pin verify alice --pin-fd 3 3<<<"$WRONG"; expect_rc 5
    ok $j pin verify alice --so --pin-fd 3 3<<<"$SO2"
    uk $j pin verify alice --so --pin-fd 3 3<<<"$WRONG_SO"; expect_rc 5
    ok $j pin change alice --pin-fd 3 --new-pin-fd 4 3<<<"$U1" 4<<<"$U2"
    uk $j pin change alice --pin-fd 3 --new-pin-fd 4 3<<<"$WRONG" 4<<<"$U3"; expect_rc 5
    uk $j pin change alice --pin-fd 3 --new-pin-fd 4 3<<<"$U2" 4<<<"$U2"; expect_rc 12
    ok $j pin change alice --pin-fd 3 --new-pin-fd 4 3<<<"$U2" 4<<<"$U1"
    uk $j pin unlock alice --so-pin-fd 3 --new-pin-fd 4 3<<<"$WRONG_SO" 4<<<"$U3"; expect_rc 5
    ok $j pin unlock alice --so-pin-fd 3 --new-pin-fd 4 3<<<"$SO2" 4<<<"$U1"
    uk $j init alice --label alice --so-pin-fd 3 --pin-fd 4 3<<<"$SO2" 4<<<"$U1"; expect_rc 11
    uk $j init alice --yes --label alice --so-pin-fd 3 --pin-fd 4 3<<<"$WRONG_SO" 4<<<"$U1"; expect_rc 5
    ok $j init alice --yes --label alice --so-pin-fd 3 --pin-fd 4 3<<<"$SO2" 4<<<"$U1"
done
# Locked, and a transport PIN that must be changed.
for i in 1 2 3 4 5 6; do uk --json pin verify alice --pin-fd 3 3<<<"$WRONG"; done
uk --json pin verify alice --pin-fd 3 3<<<"$U1"; expect_rc 6
uk pin verify alice --pin-fd 3 3<<<"$U1"; expect_rc 6
ok --json init alice --yes --label alice --transport-pin --so-pin-fd 3 --pin-fd 4 3<<<"$SO2" 4<<<"$U2"
uk --json pin verify alice --pin-fd 3 3<<<"$U2"; expect_rc 7
uk pin verify alice --pin-fd 3 3<<<"$U2"; expect_rc 7
ok pin change alice --pin-fd 3 --new-pin-fd 4 3<<<"$U2" 4<<<"$U1"
# PINs from files.
printf '%s\n' "$U1" >"$T/u1.pin"; chmod 644 "$T/u1.pin"   # with the warning
ok pin verify alice --pin-file "$T/u1.pin"
assert_contains "$ERR" "readable by other users" "PIN file 0644"

step "a PIN typed on the command line by mistake is refused, not echoed"
for args in "pin verify alice --pin $ARGV_PIN" "pin verify alice --pin=$ARGV_PIN" \
    "pin verify alice $ARGV_PIN" "pin change alice --new-pin $ARGV_PIN" "init --label x --so-pin $ARGV_PIN"; do
    # shellcheck disable=SC2086
    uk $args
    expect_rc 2 "ukey $args"
    soft assert_not_contains "$OUT$ERR" "$ARGV_PIN" "the error for \`ukey $args\`"
done

step "PINs typed on a terminal are not echoed; confirmations on a terminal"
# on_tty "ARGS" PROMPT ANSWER ...: ukey ARGS on a pseudo-terminal (script(1));
# each ANSWER is typed once PROMPT has appeared. Sets TTY_OUT (everything the
# terminal showed) and TTY_RC.
on_tty() {
    local args=$1; shift
    local buf c prompt answer rest
    TTY_OUT='' TTY_RC=0
    coproc TTY { exec timeout --kill-after=5 "$UKEY_TEST_TIMEOUT" script -qfec "$UKEY $args" /dev/null 2>&1; }
    local tty_pid=$TTY_PID
    while (($#)); do
        prompt=$1 answer=$2; shift 2
        buf=
        while [[ $buf != *"$prompt"* ]]; do
            IFS= read -r -d '' -n1 -t 20 c <&"${TTY[0]}" \
                || { show terminal "$TTY_OUT$buf"; fail "ukey $args: no prompt '$prompt' on the terminal"; }
            buf+=$c
        done
        TTY_OUT+=$buf
        printf '%s\r' "$answer" >&"${TTY[1]}"
    done
    rest=$(timeout 20 cat <&"${TTY[0]}" || true)
    TTY_OUT+=$rest
    wait "$tty_pid" || TTY_RC=$?
    { printf '$ ukey %s (on a terminal)\n' "$args"; printf '%s\n' "$TTY_OUT"; printf '(exit %s)\n' "$TTY_RC"; } >>"$T/transcript"
}
if command -v script >/dev/null && script -qec true /dev/null >/dev/null 2>&1; then
    on_tty "pin verify alice" "Enter the user PIN: " "$U1"
    assert_eq "$TTY_RC" 0 "pin verify on a terminal"
    assert_contains "$TTY_OUT" "The PIN is right." "pin verify on a terminal"
    assert_not_contains "$TTY_OUT" "$U1" "the terminal (echo must be off)"
    on_tty "pin change alice" "Enter the current user PIN: " "$U1" "Enter the new user PIN: " "$U2" "Enter it again: " "$U3"
    assert_eq "$TTY_RC" 12 "pin change on a terminal, two different new PINs"
    assert_contains "$TTY_OUT" "the two entries of the new user PIN differ: nothing was changed" "pin change on a terminal"
    on_tty "pin change alice" "Enter the current user PIN: " "$U1" "Enter the new user PIN: " "$U2" "Enter it again: " "$U2"
    assert_eq "$TTY_RC" 0 "pin change on a terminal"
    assert_contains "$TTY_OUT" "The user PIN was changed." "pin change on a terminal"
    for p in "$U1" "$U2" "$U3"; do assert_not_contains "$TTY_OUT" "$p" "the terminal (echo must be off)"; done
    ok pin verify alice --pin-fd 3 3<<<"$U2"
    # Re-initialising asks; "n" changes nothing, "y" goes on.
    on_tty "init alice --label bob" "Continue? [y/N] " "n"
    assert_eq "$TTY_RC" 11 "re-init answered n"
    assert_contains "$TTY_OUT" "deletes every key and certificate on it. Continue? [y/N]" "re-init on a terminal"
    ok --json info alice
    on_tty "init alice --label bob" "Continue? [y/N] " "y" "Enter the SO PIN: " "$SO2" \
        "Enter the new user PIN: " "$U1" "Enter it again: " "$U1"
    assert_eq "$TTY_RC" 0 "re-init answered y"
    assert_contains "$TTY_OUT" "Key 'bob' is initialised" "re-init on a terminal"
    for p in "$SO2" "$U1"; do assert_not_contains "$TTY_OUT" "$p" "the terminal (echo must be off)"; done
    ok pin verify bob --pin-fd 3 3<<<"$U1"
else
    log "no pseudo-terminal here (script(1)): terminal checks skipped"
fi

step "the state folder: private, and no PIN in it"
[[ $(stat -c %a "$T/state") == 700 ]] || fail "state folder mode $(stat -c %a "$T/state")"
n=0
while IFS= read -r -d '' f; do
    n=$((n + 1))
    if [[ -d $f ]]; then
        [[ $(stat -c %a "$f") == 700 ]] || fail "state folder $f has mode $(stat -c %a "$f")"
    else
        [[ $(stat -c %a "$f") == 600 ]] || fail "state file $f has mode $(stat -c %a "$f")"
    fi
done < <(find "$T/state" -mindepth 1 -print0)
((n >= 2)) || fail "expected the PIN state (a folder and a file) in $T/state, found $n entries"

finish
