#!/bin/sh
# A ukeyd hook for the tests: writes its UKEY_* environment to
# DIR/<ns>.<pid>.<event> (atomically: a temp name, then mv). Extra modes:
#   hook.sh DIR sleep N      sleeps N seconds first (a hook that hangs)
#   hook.sh DIR fail N       exits with N after writing
dir=$1
f="$dir/$(date +%s%N).$$.${UKEY_EVENT:-none}"
env | grep '^UKEY_' | grep -v '^UKEY_CONF=' >"$f.tmp"
mv "$f.tmp" "$f"
case ${2:-} in
sleep) exec sleep "$3" ;;
fail) exit "$3" ;;
esac
exit 0
