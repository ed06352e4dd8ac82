#!/usr/bin/env bash
# A root process (sshd running pam_p11, ukeyd's scanner, root's own tools)
# loads libukey-pkcs11.so: a config or a backend module another user could
# have written is refused with a log line naming the file and the fix, and
# the module never runs (its marker never appears). Each refusal is undone
# by the fix it names, after which the same module does load: the refusal,
# nothing else, kept it out. A user's own process only warns.
. "$(dirname "$0")/lib.sh"
need_root
need findmnt timeout
sec_setup

R=$T/root                      # root's folder
N=$T/nobody                    # another user's folder
mkdir -m 0755 "$R" "$N"
chown "$NOBODY:$NOBODY" "$N"
install -m 0755 "$EVIL" "$R/evil.so"
module_conf "$R/ukey.conf" "$R/state" "$R/evil.so"
chmod 0644 "$R/ukey.conf"
probe() { run env UKEY_CONF="$1" "$P11PROBE" "$UKEY_MODULE"; }

step "a sound config and module load (the control)"
probe "$R/ukey.conf"
marker_present "$R/evil.so" "root's config and module"

step "a config writable by others is refused"
chmod 0666 "$R/ukey.conf"
probe "$R/ukey.conf"
[[ $RC -eq 3 ]] || { show output "$OUT"; fail "C_Initialize should fail (rc $RC)"; }
marker_absent "$R/evil.so" "world-writable config"
assert_contains "$OUT" "ukey: error: refusing the config file $R/ukey.conf: it is writable by group or others (mode 0666)" "log"
assert_contains "$OUT" "fix: chown root:root $R/ukey.conf && chmod go-w $R/ukey.conf" "log"
chmod 0664 "$R/ukey.conf"
probe "$R/ukey.conf"
marker_absent "$R/evil.so" "group-writable config"
assert_contains "$OUT" "refusing the config file $R/ukey.conf: it is writable by group or others (mode 0664)" "log"
chmod go-w "$R/ukey.conf"
probe "$R/ukey.conf"
marker_present "$R/evil.so" "the config after chmod go-w"

step "a config of another user is refused"
chown "$NOBODY" "$R/ukey.conf"
probe "$R/ukey.conf"
marker_absent "$R/evil.so" "another user's config"
assert_contains "$OUT" "refusing the config file $R/ukey.conf: it is owned by uid $NOBODY" "log"
chown root "$R/ukey.conf"

step "a backend module writable by group, or of another user, is refused"
chmod 0775 "$R/evil.so"
probe "$R/ukey.conf"
marker_absent "$R/evil.so" "group-writable module"
assert_contains "$OUT" "backend 'backend' ($R/evil.so): refusing the backend module $R/evil.so: it is writable by group or others (mode 0775)" "log"
assert_contains "$OUT" "fix: chown root:root $R/evil.so && chmod go-w $R/evil.so" "log"
chmod 0755 "$R/evil.so"; chown "$NOBODY" "$R/evil.so"
probe "$R/ukey.conf"
marker_absent "$R/evil.so" "another user's module"
assert_contains "$OUT" "refusing the backend module $R/evil.so: it is owned by uid $NOBODY" "log"
chown root "$R/evil.so"
probe "$R/ukey.conf"
marker_present "$R/evil.so" "the module after chown root"

step "a module in another user's folder, or reached through a link there, is refused"
install -m 0755 "$EVIL" "$N/evil.so"
module_conf "$R/in-folder.conf" "$R/state" "$N/evil.so"
probe "$R/in-folder.conf"
marker_absent "$N/evil.so" "root's module in another user's folder"
assert_contains "$OUT" "refusing the backend module $N/evil.so: its folder $N is owned by uid $NOBODY" "log"
ln -s "$R/evil.so" "$N/link.so"; chown -h "$NOBODY" "$N/link.so"
module_conf "$R/via-link.conf" "$R/state" "$N/link.so"
probe "$R/via-link.conf"
marker_absent "$R/evil.so" "a module through another user's symlink"
assert_contains "$OUT" "refusing the backend module $N/link.so ($R/evil.so): its folder $N is owned by uid $NOBODY" "log"
# Root's own link to root's module is fine, and the link's target is loaded.
ln -s evil.so "$R/link.so"
module_conf "$R/root-link.conf" "$R/state" "$R/link.so"
probe "$R/root-link.conf"
marker_present "$R/evil.so" "root's symlink to root's module"

step "a sticky shared folder (like /tmp): root's file is fine, another user's file in it is not"
S=$T/shared
mkdir -m 1777 "$S"
install -m 0755 "$EVIL" "$S/evil.so"
module_conf "$R/sticky.conf" "$R/state" "$S/evil.so"
probe "$R/sticky.conf"
marker_present "$S/evil.so" "root's module in a sticky folder"
chown "$NOBODY" "$S/evil.so"
probe "$R/sticky.conf"
marker_absent "$S/evil.so" "another user's module in a sticky folder"
assert_contains "$OUT" "refusing the backend module $S/evil.so" "log"

step "a user's own process only warns, and goes on"
install -o "$NOBODY" -g "$NOBODY" -m 0755 "$EVIL" "$N/own.so"
module_conf "$N/ukey.conf" "$N/state" "$N/own.so"
chown "$NOBODY:$NOBODY" "$N/ukey.conf"; chmod 0666 "$N/ukey.conf"
run "${AS_NOBODY[@]}" env UKEY_CONF="$N/ukey.conf" "$P11PROBE" "$UKEY_MODULE"
marker_present "$N/own.so" "the user's own (if unsafe) config"
assert_contains "$OUT" "ukey: warning: the config file $N/ukey.conf is not safe: it is writable by group or others" "log"
assert_contains "$OUT" "chmod go-w $N/ukey.conf" "log"

step "the walk itself: loops, .., relative paths, folders"
printf 'x\n' >"$R/good.conf"; chmod 0644 "$R/good.conf"
mkdir -m 0755 "$R/sub"
ln -s loop-b "$R/loop-a"; ln -s loop-a "$R/loop-b"
run "$TRUSTPROBE" "$R/loop-a" "$R/sub/../good.conf" "$N/../root/good.conf" "$R" "$R/missing.conf" "$R/sub/.." \
    "$R/good.conf/."
mapfile -t V < <(sed -n '5,$p' <<<"$OUT")
[[ ${#V[@]} -eq 7 ]] || { show output "$OUT"; fail "trustprobe: expected 7 verdicts"; }
assert_contains "${V[0]}" "error $R/loop-a" "a symlink loop"
assert_contains "${V[0]}" "Too many levels of symbolic links" "a symlink loop"
assert_contains "${V[1]}" "ok $R/good.conf" "a path with .."
assert_contains "${V[2]}" "refusing the file $N/../root/good.conf ($R/good.conf): its folder $N is owned by uid $NOBODY" \
    "a path through another user's folder"
assert_contains "${V[3]}" "error $R is not a regular file" "a folder"
assert_contains "${V[4]}" "error $R/missing.conf: No such file or directory" "a missing file"
assert_contains "${V[5]}" "error $R/sub/.. is not a regular file" "a folder by .."
assert_contains "${V[6]}" "error $R/good.conf/. (at $R/good.conf): Not a directory" "a file as a folder"
(cd "$R/sub" && run "$TRUSTPROBE" ../good.conf && assert_contains "$OUT" "ok $R/good.conf" "a relative path")
