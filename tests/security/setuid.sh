#!/usr/bin/env bash
# A setuid program (pam_p11 under su, sudo or login) loads libukey-pkcs11.so
# for an unprivileged caller who set UKEY_CONF to his own config naming his
# own backend module, and UKEY_LOG_LEVEL: neither is read (secure_getenv),
# only the system config is, and his module never runs as root (its marker
# file never appears). The same program without the setuid bit does load
# it: the attack is real, the test can fail. Then the rules for files in a
# privileged process (AT_SECURE), as ukey's own check sees them: a config
# writable by group or others, a file of the calling user, a file in his
# folder or reached through his symlink are refused.
. "$(dirname "$0")/lib.sh"
need_root
need findmnt timeout
sec_setup
# In the sanitized tree: the leak check cannot ptrace a setuid process.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"

mkdir -m 0755 "$T/bin" "$T/root"
for p in p11probe trustprobe; do
    install -o root -g root -m 0755 "$SECURITY_BIN_DIR/$p" "$T/bin/$p"
    install -o root -g root -m 4755 "$SECURITY_BIN_DIR/$p" "$T/bin/$p-suid"
done

# The attacker's config and module, in his own folder.
A=$T/attacker
mkdir -m 0755 "$A"
cp "$EVIL" "$A/evil.so"
module_conf "$A/ukey.conf" "$A/state" "$A/evil.so"
chown -R "$NOBODY:$NOBODY" "$A"
hostile=(env UKEY_CONF="$A/ukey.conf" UKEY_LOG_LEVEL=debug SOFTHSM2_CONF="$A/softhsm2.conf" OPENSC_CONF="$A/opensc.conf")

step "without the setuid bit, the caller's UKEY_CONF is used: his module runs (the attack is real)"
run "${AS_NOBODY[@]}" "${hostile[@]}" "$T/bin/p11probe" "$UKEY_MODULE"
assert_contains "$OUT" "uid=$NOBODY euid=$NOBODY" "p11probe"
marker_present "$A/evil.so" "p11probe (not setuid) with UKEY_CONF=$A/ukey.conf"

step "setuid root: UKEY_CONF and UKEY_LOG_LEVEL are ignored, the hostile module never loads"
run "${AS_NOBODY[@]}" "${hostile[@]}" "$T/bin/p11probe-suid" "$UKEY_MODULE"
assert_contains "$OUT" "uid=$NOBODY euid=0" "setuid p11probe (no euid 0: is the setuid bit ignored here, no_new_privs?)"
marker_absent "$A/evil.so" "setuid p11probe with UKEY_CONF=$A/ukey.conf"
assert_not_contains "$OUT" "$A/" "setuid p11probe (the caller's config must not even be read)"
if [[ ! -e /etc/ukey/ukey.conf ]]; then
    [[ $RC -eq 3 ]] || { show output "$OUT"; fail "C_Initialize should fail without /etc/ukey/ukey.conf (rc $RC)"; }
    assert_contains "$OUT" "cannot read the config file /etc/ukey/ukey.conf" "setuid p11probe"
    assert_contains "$OUT" "UKEY_CONF is ignored in a setuid or setgid program" "setuid p11probe"
fi
assert_not_contains "$OUT" "ukey: debug:" "setuid p11probe (UKEY_LOG_LEVEL=debug must be ignored)"

step "what the process sees: privileged, the system config, no UKEY_LOG_LEVEL"
run "${AS_NOBODY[@]}" "${hostile[@]}" "$T/bin/trustprobe-suid"
assert_contains "$OUT" "uid=$NOBODY euid=0 privileged=1 refused=1" "setuid trustprobe"
assert_contains "$OUT" "config_path=/etc/ukey/ukey.conf" "setuid trustprobe"
assert_contains "$OUT" "UKEY_LOG_LEVEL=(ignored)" "setuid trustprobe"
# Backends read their own variables with getenv (OpenSC's config can name
# card-driver modules): gone before any backend is loaded.
assert_contains "$OUT" "scrubbed=SOFTHSM2_CONF,OPENSC_CONF SOFTHSM2_CONF=(unset)" "setuid trustprobe"
run "${AS_NOBODY[@]}" "${hostile[@]}" "$T/bin/trustprobe"
assert_contains "$OUT" "uid=$NOBODY euid=$NOBODY privileged=0 refused=0" "trustprobe"
assert_contains "$OUT" "config_path=$A/ukey.conf" "trustprobe"
assert_contains "$OUT" "scrubbed=(none) SOFTHSM2_CONF=$A/softhsm2.conf" "trustprobe (a user's own process keeps its environment)"
assert_contains "$OUT" "UKEY_LOG_LEVEL=debug" "trustprobe"

step "files in a privileged process: only root's, in root's folders, not writable by group or others"
printf 'x\n' >"$T/root/good.conf"; chmod 0644 "$T/root/good.conf"
printf 'x\n' >"$T/root/group-writable.conf"; chmod 0664 "$T/root/group-writable.conf"
printf 'x\n' >"$T/root/other-writable.conf"; chmod 0646 "$T/root/other-writable.conf"
ln -s good.conf "$T/root/link.conf"
printf 'x\n' >"$T/root/callers.conf"; chmod 0644 "$T/root/callers.conf"; chown "$NOBODY" "$T/root/callers.conf"
printf 'x\n' >"$A/root-file.conf"; chmod 0644 "$A/root-file.conf"   # root's, in the attacker's folder
ln -s "$T/root/good.conf" "$A/link.conf"; chown -h "$NOBODY:$NOBODY" "$A/link.conf"
run "${AS_NOBODY[@]}" "$T/bin/trustprobe-suid" "$T/root/good.conf" "$T/root/link.conf" "$T/root/group-writable.conf" \
    "$T/root/other-writable.conf" "$T/root/callers.conf" "$A/root-file.conf" "$A/link.conf" "$A/ukey.conf"
mapfile -t V < <(sed -n '5,$p' <<<"$OUT")
[[ ${#V[@]} -eq 8 ]] || { show output "$OUT"; fail "trustprobe: expected 8 verdicts"; }
assert_contains "${V[0]}" "ok $T/root/good.conf" "root's 0644 file"
assert_contains "${V[1]}" "ok $T/root/good.conf" "root's symlink to it (resolved)"
assert_contains "${V[2]}" "refusing the file $T/root/group-writable.conf: it is writable by group or others (mode 0664)" \
    "group-writable config"
assert_contains "${V[2]}" "fix: chown root:root $T/root/group-writable.conf && chmod go-w $T/root/group-writable.conf" \
    "group-writable config"
assert_contains "${V[3]}" "refusing the file $T/root/other-writable.conf: it is writable by group or others" \
    "other-writable config"
assert_contains "${V[4]}" "refusing the file $T/root/callers.conf: it is owned by uid $NOBODY (nobody), not by root," \
    "the caller's own file (in root's folder)"
assert_contains "${V[5]}" "refusing the file $A/root-file.conf: its folder $A is owned by uid $NOBODY" \
    "root's file in the caller's folder"
assert_contains "${V[6]}" "refusing the file $A/link.conf ($T/root/good.conf): its folder $A is owned by uid $NOBODY" \
    "the caller's symlink to a good file"
assert_contains "${V[7]}" "refusing the file $A/ukey.conf: its folder $A is owned by uid $NOBODY" \
    "the caller's own config in his folder"

step "the same files for a process without privileges: used, with a warning for the unsafe ones"
run "${AS_NOBODY[@]}" "$T/bin/trustprobe" "$T/root/group-writable.conf" "$A/ukey.conf"
assert_contains "$OUT" "ok $T/root/group-writable.conf" "unprivileged trustprobe"
assert_contains "$OUT" "ukey: warning: the file $T/root/group-writable.conf is not safe: it is writable by group or others" \
    "unprivileged trustprobe"
assert_contains "$OUT" "ok $A/ukey.conf" "unprivileged trustprobe (the user's own file)"
