#!/usr/bin/env bash
# daemon.signals_hooks: hooks that hang (killed after their timeout, logged)
# and hooks that fail (logged with the exit code) do not hold the daemon up;
# SIGHUP with a broken config is logged and the old config stays in force,
# a good one is taken; SIGTERM ends ukeyd with 0 within 1 s, also while a
# hook runs, and leaves no hook process behind.
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
BOUND=$(scan_bound 2)

daemon_start
watch_start all

step "a Key appears: three hooks run, one hangs, one fails"
t0=$(now_ms)
new_token Alice
wait_events all '.event == "key-inserted"' 1 "$BOUND"
wait_for "the slow hook started" 5 files_in "$T/hooks-slow" 1
slow=$(ls "$T/hooks-slow")
slow_pid=$(cut -d. -f2 <<<"$slow")
alive "$slow_pid" || fail "the slow hook (pid $slow_pid) is not running"
# While it hangs, the daemon answers at once.
t1=$(now_ms)
status_json
(($(now_ms) - t1 < 1000)) || fail "ukey status took $(($(now_ms) - t1)) ms while a hook hangs"
jeq "$ST" '.status.hooks.running >= 1' true "status: a hook runs"
wait_log "failed with exit code 3"
wait_log "took longer than its timeout and was stopped" 5
log "the slow hook was stopped $(($(now_ms) - t0)) ms after the token appeared (timeout 1 s)"
wait_for "the slow hook's process gone" 5 eval "! alive $slow_pid"
wait_hooks key-inserted 1 "" 5

step "the daemon goes on: the next Key, the next hooks"
new_token Bob
wait_events all '.event == "key-inserted"' 2 "$BOUND"
wait_hooks key-inserted 2 "" 5
wait_for "second slow hook" 5 files_in "$T/hooks-slow" 2
wait_for "the failing hook ran twice" 5 files_in "$T/hooks-fail" 2

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
sed 's/^rescan_interval = .*/rescan_interval = 0.75/' "$T/ukey.conf.good" >"$T/ukey.conf"
n=$(grep -c "reloaded; rescanning" "$T/ukeyd.log" || true)
kill -HUP "$UKEYD_PID"
reloads_past() { (($(grep -c 'reloaded; rescanning' "$T/ukeyd.log") > $1)); }
wait_for "the config reloaded" "$DAEMON_WAIT" reloads_past "$n"
status_json
jeq "$ST" '.status.scan.interval_s' 0.75 "rescan interval after a good reload"
jeq "$ST" '.status.hooks.configured' 3 "hooks after reload"
wait_events all '.event == "key-inserted" and .key.label == "Carol"' 1 "$BOUND"

step "SIGTERM while a hook hangs: exit 0 within 1 s, no hook left"
delete_token Carol
wait_events all '.event == "key-removed"' 1 "$BOUND"
new_token Dave
wait_events all '.event == "key-inserted" and .key.label == "Dave"' 1 "$BOUND"
wait_for "the slow hook for Dave" 5 files_in "$T/hooks-slow" 4
slow_pid=$(ls -t "$T/hooks-slow" | head -n 1 | cut -d. -f2)
alive "$slow_pid" || fail "the slow hook (pid $slow_pid) is not running"
daemon_stop 1
alive "$slow_pid" && fail "the hanging hook (pid $slow_pid) outlived ukeyd"
rc=0; wait "${WATCH_PID[all]}" || rc=$?
unset "WATCH_PID[all]"
assert_eq "$rc" 15 "ukey watch after ukeyd ended"

expect_count all '.event == "key-inserted"' 4
expect_count all '.event == "key-removed"' 1
! grep -q "ukeyd: \[json.exception" "$T/ukeyd.log" || fail "an exception in ukeyd's log"
check_no_pin_in_logs
finish
