#!/usr/bin/env bash
# daemon.signals_hooks: hooks that hang (killed after their timeout, logged)
# and hooks that fail (logged with the exit code) do not hold the daemon up;
# SIGHUP with a broken config is logged and the old config stays in force,
# a good one is taken; while a hook hangs, ukeyd answers `status` and SIGTERM
# ends it with 0 without waiting for the hook (daemon_stop's 10 s against
# the hook's 60 s timeout by then), leaving no hook process behind.
. "$(dirname "$0")/lib.sh"

DAEMON_RESCAN=0.5
mkdir_hooks() { mkdir -m 0700 "$T/hooks-slow" "$T/hooks-fail"; }
files_in() { (($(find "$1" -maxdepth 1 -type f ! -name '*.tmp' | grep -c .) >= $2)); }
daemon_setup "
[[hook]]
events = [\"key-inserted\"]
command = [\"/bin/sh\", \"$DAEMON_DIR/hook.sh\", \"__T__/hooks-slow\", \"sleep\", \"100\"]
timeout = 1

[[hook]]
events = [\"key-inserted\"]
command = [\"/bin/sh\", \"$DAEMON_DIR/hook.sh\", \"__T__/hooks-fail\", \"fail\", \"3\"]
timeout = 5"
sed -i "s|__T__|$T|g" "$T/ukey.conf"
mkdir_hooks
BOUND=$(scan_bound 20)   # a bound on waits that end when the event comes

daemon_start
watch_start all

step "a Key appears: three hooks run, one hangs, one fails"
t0=$(now_ms)
new_token Alice
wait_events all '.event == "key-inserted"' 1 "$BOUND"
wait_for "the slow hook started" "$DAEMON_WAIT" files_in "$T/hooks-slow" 1
slow=$(ls "$T/hooks-slow")
slow_pid=$(cut -d. -f2 <<<"$slow")
# (Whether the daemon answers while a hook hangs is checked in the last
# step, where the hook's timeout is 60 s: this one may be over already.)
wait_log "failed with exit code 3"
wait_log "took longer than its timeout and was stopped"
log "the slow hook was stopped $(($(now_ms) - t0)) ms after the token appeared (timeout 1 s)"
wait_for "the slow hook's process gone" "$DAEMON_WAIT" eval "! alive $slow_pid"
wait_hooks key-inserted 1 "" "$DAEMON_WAIT"

step "the daemon goes on: the next Key, the next hooks"
new_token Bob
wait_events all '.event == "key-inserted"' 2 "$BOUND"
wait_hooks key-inserted 2 "" "$DAEMON_WAIT"
wait_for "second slow hook" "$DAEMON_WAIT" files_in "$T/hooks-slow" 2
wait_for "the failing hook ran twice" "$DAEMON_WAIT" files_in "$T/hooks-fail" 2

step "SIGHUP with a broken config: logged, the old one stays"
cp "$T/ukey.conf" "$T/ukey.conf.good"
sed -i 's/^rescan_interval = .*/rescan_interval = "soon"/' "$T/ukey.conf"
kill -HUP "$UKEYD_PID"
wait_log "the config was not reloaded, the old one stays in force"
alive "$UKEYD_PID" || fail "ukeyd died on SIGHUP with a broken config"
status_json
jeq "$ST" '.status.scan.interval_s' 0.5 "rescan interval after a broken reload"
# The old config works: a new token is found by the 0.5 s rescans. (The
# scanner child must not read the broken file either.)
new_token Carol
soft wait_events all '.event == "key-inserted" and .key.label == "Carol"' 1 "$BOUND"
soft eval '! grep -q "ukeyd: the backend scan failed" "$T/ukeyd.log" || fail "scans fail after a broken reload: the scanner child reads the broken file, not the config in force"'

step "SIGHUP with a good config: taken"
# Also the slow hook's timeout from 1 s to 60 s: in the last step it must
# still hang when ukeyd is stopped, for so much longer than daemon_stop's
# 10 s that waiting for it cannot pass as a slow exit.
sed -e 's/^rescan_interval = .*/rescan_interval = 0.75/' -e 's/^timeout = 1$/timeout = 60/' \
    "$T/ukey.conf.good" >"$T/ukey.conf"
n=$(grep -c "reloaded; rescanning" "$T/ukeyd.log" || true)
kill -HUP "$UKEYD_PID"
reloads_past() { (($(grep -c 'reloaded; rescanning' "$T/ukeyd.log") > $1)); }
wait_for "the config reloaded" "$DAEMON_WAIT" reloads_past "$n"
status_json
jeq "$ST" '.status.scan.interval_s' 0.75 "rescan interval after a good reload"
jeq "$ST" '.status.hooks.configured' 3 "hooks after reload"
wait_events all '.event == "key-inserted" and .key.label == "Carol"' 1 "$BOUND"

step "a hook hangs: status answers, SIGTERM exits 0 without waiting for it, no hook left"
delete_token Carol
wait_events all '.event == "key-removed"' 1 "$BOUND"
new_token Dave
wait_events all '.event == "key-inserted" and .key.label == "Dave"' 1 "$BOUND"
wait_for "the slow hook for Dave" "$DAEMON_WAIT" files_in "$T/hooks-slow" 4
slow_pid=$(ls -t "$T/hooks-slow" | head -n 1 | cut -d. -f2)
alive "$slow_pid" || fail "the slow hook (pid $slow_pid) is not running (its timeout is 60 s)"
# The daemon answers while the hook hangs, and says a hook runs: a daemon
# that waited for the hook could answer only once it is over. (How long the
# answer took, ukey's start included, is logged, not checked.)
t1=$(now_ms)
status_json
log "ukey status answered in $(($(now_ms) - t1)) ms while a hook hangs"
jeq "$ST" '.status.hooks.running >= 1' true "status: a hook runs"
alive "$slow_pid" || fail "the slow hook (pid $slow_pid) ended before SIGTERM (its timeout is 60 s)"
daemon_stop
alive "$slow_pid" && fail "the hanging hook (pid $slow_pid) outlived ukeyd"
rc=0; wait "${WATCH_PID[all]}" || rc=$?
unset "WATCH_PID[all]"
assert_eq "$rc" 15 "ukey watch after ukeyd ended"

expect_count all '.event == "key-inserted"' 4
expect_count all '.event == "key-removed"' 1
! grep -q "ukeyd: \[json.exception" "$T/ukeyd.log" || fail "an exception in ukeyd's log"
check_no_pin_in_logs
finish
