#!/usr/bin/env bash
# daemon.flood (docs/security.md, ukeyd flood): another local user (nobody,
# through setpriv) connects and closes 10,000 times as fast as it can, while
# root asks `ukey status` again and again. Every status answers; the daemon's
# log grows by a bounded number of lines (the first refusals, then one
# summary per user and interval, written at the latest when ukeyd stops);
# once the flood is over the user can connect again. Then the same with
# [daemon] allow_users = ["root"], where nobody is refused for not being
# allowed. No timing margins: the flood takes as long as it takes.
. "$(dirname "$0")/lib.sh"
POKE=$(daemon_helper sockpoke)
[[ $EUID -eq 0 ]] || skip "needs root (setpriv to another uid)"
need setpriv
FLOODER=nobody
id "$FLOODER" >/dev/null 2>&1 || skip "no user $FLOODER"
FUID=$(id -u "$FLOODER")

# A long rescan interval: the log holds little but what the flood causes.
DAEMON_RESCAN=30
daemon_setup
# nobody must reach the socket (0666 in $T/run) and run sockpoke: the
# folders on the way are made traversable, not listable.
chmod 0711 "$T" "$T/run"
mkdir -m 0711 "$T/bin"
install -m 0755 "$POKE" "$T/bin/sockpoke"
AS_FLOODER=(setpriv --reuid="$FUID" --regid="$(id -g "$FLOODER")" --clear-groups --no-new-privs)

# flood WHAT: 10,000 connect/close from the flooder while root
# asks status in a loop for as long as the flood lasts (at least once);
# every status must answer.
flood() {
    local what=$1 fpid n=0 rc=0 lines0 lines1
    lines0=$(wc -l <"$T/ukeyd.log")
    "${AS_FLOODER[@]}" "$T/bin/sockpoke" "$SOCK" churn 10000 >"$T/churn.out" 2>"$T/churn.err" &
    fpid=$!
    while :; do
        timeout -k 5 60 "$UKEY" status --socket "$SOCK" >"$T/status.out" 2>&1 \
            || { cat "$T/status.out" >&2; fail "$what: root's status #$((n + 1)) failed during the flood"; }
        n=$((n + 1))
        kill -0 "$fpid" 2>/dev/null || break
    done
    wait "$fpid" || rc=$?
    [[ $rc -eq 0 ]] || { cat "$T/churn.out" "$T/churn.err" >&2; fail "$what: sockpoke churn exited with $rc"; }
    log "$what: $(cat "$T/churn.out"); root's status answered $n times"
    alive "$UKEYD_PID" || fail "$what: ukeyd died"
    status_json
    lines1=$(wc -l <"$T/ukeyd.log")
    log "$what: the log grew by $((lines1 - lines0)) lines"
    ((lines1 - lines0 < 50)) || { sed -n "$((lines0 + 1)),\$p" "$T/ukeyd.log" | head -n 60 >&2; fail "$what: the log grew by $((lines1 - lines0)) lines"; }
}

# flooder_status: the flooder's own status request answers (its budget
# refills after the flood).
flooder_status() { "${AS_FLOODER[@]}" "$T/bin/sockpoke" "$SOCK" status >/dev/null 2>&1; }

step "open socket: nobody connects 10,000 times"
daemon_start
flood "over the rate"
# Refused for its rate, or (closed connections not yet noticed) for having
# too many at once: either way the first few are in the log.
grep -q "refused a connection from uid $FUID " "$T/ukeyd.log" || fail "no refusal in the log"
wait_for "nobody's status answering again after the flood" 60 flooder_status
daemon_stop
# ukeyd writes what it had counted when it stops.
grep -q "more from uid $FUID in the last .* s: connections refused" "$T/ukeyd.log" \
    || { tail -n 20 "$T/ukeyd.log" >&2; fail "no summary of the refused connections"; }
log "summary: $(grep -m1 "more from uid $FUID" "$T/ukeyd.log")"

step "allow_users = [\"root\"]: nobody is refused, 10,000 times"
sed -i 's/^\[daemon\]$/[daemon]\nallow_users = ["root"]/' "$T/ukey.conf"
daemon_start
flood "not allowed"
grep -q "refused a connection from uid $FUID .*not in allow_users" "$T/ukeyd.log" \
    || fail "no refusal for allow_users in the log"
flooder_status && fail "nobody got an answer though allow_users is root only"
daemon_stop
finish
