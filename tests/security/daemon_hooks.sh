#!/usr/bin/env bash
# ukeyd runs hooks as root: a hook command another user owns, or anyone may
# write, is not run, with a log line naming the file and the fix; the other
# hooks still run. The check is made at every run: once fixed as the line
# says, the same hook runs (so the refusal, nothing else, stopped it). A
# config others may write is refused at start and on SIGHUP.
. "$(dirname "$0")/../daemon/lib.sh"
. "$(dirname "$0")/lib.sh"
need_root

daemon_setup "
[[hook]]
events = [\"key-inserted\", \"key-removed\"]
command = [\"__T__/nobody-hook\"]
timeout = 10

[[hook]]
events = [\"key-inserted\", \"key-removed\"]
command = [\"__T__/writable-hook\"]
timeout = 10"
sed -i "s|__T__|$T|g" "$T/ukey.conf"
for h in nobody-hook writable-hook; do
    printf '#!/bin/sh\necho "ran as $(id -u) for $UKEY_EVENT" >>"$0.marker"\n' >"$T/$h"
done
chown "$NOBODY:$NOBODY" "$T/nobody-hook"; chmod 0755 "$T/nobody-hook"
chmod 0777 "$T/writable-hook"
no_marker() { [[ ! -e $T/$1.marker ]] || { show marker "$(cat "$T/$1.marker")"; fail "$2: the hook $T/$1 ran"; }; }

step "a config others may write: ukeyd does not start"
chmod 0666 "$T/ukey.conf"
rc=0
err=$(timeout -k 5 30 "$UKEYD" --log-level debug 2>&1 </dev/null) || rc=$?
[[ $rc -eq 1 ]] || { show ukeyd "$err"; fail "ukeyd with a world-writable config exited with $rc, expected 1"; }
assert_contains "$err" "refusing the config file $T/ukey.conf: it is writable by group or others (mode 0666)" "ukeyd"
assert_contains "$err" "chmod go-w $T/ukey.conf" "ukeyd"
chmod 0600 "$T/ukey.conf"

daemon_start

step "a Key appears: the sound hook runs, the two unsafe ones do not"
new_token alice
wait_hooks key-inserted 1 "UKEY_TOKEN_LABEL=alice" 20
wait_log "hook $T/nobody-hook (key-inserted) not run: refusing the hook command $T/nobody-hook: it is owned by uid $NOBODY"
wait_log "fix: chown root:root $T/nobody-hook && chmod go-w $T/nobody-hook"
wait_log "hook $T/writable-hook (key-inserted) not run: refusing the hook command $T/writable-hook: it is writable by group or others (mode 0777)"
no_marker nobody-hook "another user's hook"
no_marker writable-hook "a world-writable hook"

step "SIGHUP with a config others may write: refused, the old one stays"
chmod 0666 "$T/ukey.conf"
kill -HUP "$UKEYD_PID"
wait_log "the config was not reloaded, the old one stays in force: refusing the config file $T/ukey.conf"
chmod 0600 "$T/ukey.conf"

step "fixed as the log line says, the same hooks run at the next event"
chown root:root "$T/nobody-hook"; chmod go-w "$T/nobody-hook" "$T/writable-hook"
delete_token alice
wait_hooks key-removed 1 "" 20
wait_for "the fixed hooks ran" 10 test -e "$T/nobody-hook.marker" -a -e "$T/writable-hook.marker"
assert_contains "$(cat "$T/nobody-hook.marker")" "ran as 0 for key-removed" "nobody-hook.marker"
assert_not_contains "$(cat "$T/nobody-hook.marker")" "key-inserted" "nobody-hook.marker"
daemon_stop 5
