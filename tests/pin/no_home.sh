#!/usr/bin/env bash
# A user whose home folder does not exist (nobody, home /nonexistent) and a
# ukey.conf without state_dir: ukey has nowhere to count PIN tries, so it
# refuses PINs (a try it cannot record is a try it does not allow) and says
# what is wrong and how to fix it, instead of "hardware error"; `ukey list`
# shows the Key locked with its state damaged, not 6/6. Setting state_dir
# fixes it.
. "$(dirname "$0")/../cli/lib.sh"
TEST_NAME=pin.no_home
[[ $(id -u) == 0 ]] || skip "needs root to run ukey as another user (setpriv)"
need setpriv getent
home=$(getent passwd nobody | cut -d: -f6)
[[ -n $home && ! -e $home ]] || skip "user nobody's home folder ($home) exists"
cli_setup

SO=So-Pin-home-7Kq2
U=User-home-Bv48
init_key homeless "$SO" "$U"

# nobody's own copy of the Key, and a config without state_dir.
chmod 0711 "$T"
N=$T/nobody
mkdir -m 0700 "$N"
cp -r "$T/tokens" "$N/tokens"
softhsm_conf "$N/softhsm2.conf" "$N/tokens"
# write_conf [STATE_DIR]: nobody's ukey.conf, without state_dir if none given.
write_conf() {
    ukey_conf "${1:-}" "$SOFTHSM_MODULE" softhsm ukey warning | sed '/^state_dir = ""$/d' >"$N/ukey.conf"
    chown -R nobody:nogroup "$N"
}
write_conf

# as_nobody ARGS...: ukey as nobody (uk() with another user and environment).
as_nobody() {
    UK_WHO='(nobody) '
    UK_AS=(setpriv --reuid=nobody --regid=nogroup --clear-groups
        env -i PATH=/usr/bin:/bin UKEY_CONF="$N/ukey.conf" SOFTHSM2_CONF="$N/softhsm2.conf"
        UKEY_MODULE="$UKEY_MODULE" ${ASAN_OPTIONS:+ASAN_OPTIONS="$ASAN_OPTIONS"}
        ${UBSAN_OPTIONS:+UBSAN_OPTIONS="$UBSAN_OPTIONS"} ${LSAN_OPTIONS:+LSAN_OPTIONS="$LSAN_OPTIONS"})
    uk "$@"
    UK_AS=() UK_WHO=
}

as_nobody --version
[[ $RC == 0 ]] || { show stderr "$ERR"; skip "nobody cannot run $UKEY (its folders are not readable by others?)"; }

step "ukey list: the Key is shown locked with its state damaged, not 6/6"
as_nobody --json list
expect_rc 0 "ukey list as nobody"
key=$(key_in "$OUT" homeless)
jeq "$key" '.pin.state_damaged' true "list as nobody"
jeq "$key" '.pin.user.locked' true "list as nobody"
assert_contains "$ERR" "no state folder" "list as nobody (stderr)"
assert_contains "$ERR" "$home/.local/state/ukey" "list as nobody (stderr)"

step "ukey pin verify: refused, saying why and how to fix it"
as_nobody pin verify homeless --pin-fd 3 3<<<"$U"
expect_rc 10 "pin verify as nobody"
assert_contains "$ERR" "ukey has no state folder to count PIN tries in" "pin verify as nobody"
assert_contains "$ERR" "set state_dir in ukey.conf" "pin verify as nobody"
assert_contains "$ERR" "$home/.local/state/ukey does not exist and cannot be created" "pin verify as nobody"
assert_not_contains "$ERR" "hardware error" "pin verify as nobody"
assert_not_contains "$ERR" "unplug" "pin verify as nobody"

step "with state_dir set, the same command works"
write_conf "$N/state"
as_nobody pin verify homeless --pin-fd 3 3<<<"$U"
expect_rc 0 "pin verify as nobody with state_dir"
as_nobody --json list
jeq "$(key_in "$OUT" homeless)" '.pin.user' '{"locked":false,"max_tries":6,"tries_left":6}' "list with state_dir"

finish
