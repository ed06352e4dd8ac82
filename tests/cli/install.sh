#!/usr/bin/env bash
# `cmake --install` of this build tree: every file in place for the prefix
# given at install time, the files that name installed paths (p11-kit's
# registration, the systemd unit) naming them right, the man pages rendering,
# an administrator's ukey.conf kept on a second install; and what was
# installed works from there: the installed ukey finds the installed module
# beside it (no UKEY_MODULE), and p11-kit, given the installed registration,
# lists ukey with its path and shows the Key exactly once through
# p11-kit-proxy. Runs in a private mount namespace whose p11-kit module
# folder is the test's own (lib.sh, private_p11kit).
. "$(dirname "$0")/lib.sh"
private_p11kit "$@"
cli_setup
[[ -n ${UKEY_BUILD_DIR:-} && -n ${UKEY_INSTALL_LIBDIR:-} && -x ${CMAKE:-} ]] \
    || skip "UKEY_BUILD_DIR, UKEY_INSTALL_LIBDIR and CMAKE come from ctest"

# install DESTDIR PREFIX: cmake --install of the build tree.
install_to() {
    DESTDIR=$1 "$CMAKE" --install "$UKEY_BUILD_DIR" --prefix "$2" >"$T/install.out" 2>&1 \
        || { show "cmake --install" "$(<"$T/install.out")"; fail "cmake --install --prefix $2"; }
}
# files_under DIR: the files and links below DIR, as absolute paths of the
# installed system (DIR cut off), sorted.
files_under() { (cd "$1" && find . \( -type f -o -type l \) | sed 's|^\.||' | LC_ALL=C sort); }

step "cmake --install --prefix /opt/ukey into a DESTDIR: every file, and nothing else"
D=$T/dest
install_to "$D" /opt/ukey
P=/opt/ukey L=$UKEY_INSTALL_LIBDIR
expected=$(
    printf '%s\n' /etc/ukey/ukey.conf "$P/bin/ukey" "$P/sbin/ukeyd" "$P/$L/pkcs11/libukey-pkcs11.so" \
        "$P/share/p11-kit/modules/ukey.module" "$P/lib/systemd/system/ukeyd.service" \
        "$P/share/man/man1/ukey.1" "$P/share/man/man5/ukey.conf.5" "$P/share/man/man8/ukeyd.8" \
        "$P/share/doc/ukey/README.md" "$P/share/doc/ukey/examples/ukey.conf"
    for f in "$CLI_DIR"/../../conf/service-mode/*; do printf '%s\n' "$P/share/doc/ukey/examples/service-mode/${f##*/}"; done
    for f in "$CLI_DIR"/../../docs/*.md; do printf '%s\n' "$P/share/doc/ukey/${f##*/}"; done
)
assert_eq "$(files_under "$D")" "$(LC_ALL=C sort <<<"$expected")" "the installed files"
for f in $(files_under "$D"); do
    [[ $(stat -c %a "$D$f") =~ ^(644|755)$ ]] || fail "$f is mode $(stat -c %a "$D$f"), not 0644 or 0755"
done

step "the p11-kit registration and the unit name the installed paths"
module_line=$(grep '^module:' "$D$P/share/p11-kit/modules/ukey.module")
assert_eq "$module_line" "module: $P/$L/pkcs11/libukey-pkcs11.so" "ukey.module"
unit=$(<"$D$P/lib/systemd/system/ukeyd.service")
assert_contains "$unit" "ExecStart=$P/sbin/ukeyd"$'\n' "ukeyd.service: ExecStart"
assert_contains "$unit" "Environment=UKEY_CONF=/etc/ukey/ukey.conf" "ukeyd.service: the config"
assert_contains "$unit" "Documentation=man:ukeyd(8)" "ukeyd.service: its man page"
if grep -nE '@[A-Z_]+@' "$D$P/share/p11-kit/modules/ukey.module" "$D$P/lib/systemd/system/ukeyd.service"; then
    fail "a placeholder was left in a generated file"
fi
cmp -s "$D/etc/ukey/ukey.conf" "$CLI_DIR/../../conf/ukey.conf" || fail "/etc/ukey/ukey.conf is not the shipped default"

step "the man pages render without a warning"
if command -v groff >/dev/null; then
    for m in man1/ukey.1 man5/ukey.conf.5 man8/ukeyd.8; do
        w=$(groff -man -Tutf8 -ww -z "$D$P/share/man/$m" 2>&1)
        assert_eq "$w" "" "groff warnings of $m"
    done
    assert_contains "$(MANWIDTH=80 man -l "$D$P/share/man/man5/ukey.conf.5" 2>/dev/null)" "ukey.conf" "man -l ukey.conf.5"
else
    log "groff is not installed: man pages not rendered"
fi

step "a second install keeps the administrator's ukey.conf"
printf '# edited by the administrator\n' >>"$D/etc/ukey/ukey.conf"
install_to "$D" /opt/ukey
assert_contains "$(<"$D/etc/ukey/ukey.conf")" "# edited by the administrator" "ukey.conf after a second install"
assert_contains "$(<"$T/install.out")" "Kept: $D/etc/ukey/ukey.conf" "the install says it kept it"

step "the installed ukey finds the installed module beside it (no UKEY_MODULE)"
[[ ! -e $UKEY_CONFIGURED_MODULE ]] \
    || skip "the configured module path ($UKEY_CONFIGURED_MODULE) exists here: it would hide the lookup beside ukey"
new_pins SO U1
init_key alice "$SO" "$U1"
saved=$UKEY
UKEY=$D$P/bin/ukey
UKEY_MODULE='' ok --json list
UKEY=$saved
jeq "$OUT" '[.keys[] | select(.initialized) | .label]' '["alice"]' "the installed ukey, with no UKEY_MODULE"

step "p11-kit with the installed registration: ukey listed with its path, the Key seen once"
[[ -n $P11KIT_MODULES ]] || skip "no private p11-kit module folder (unshare --mount)"
need p11-kit pkcs11-tool
# The installed tree at its own path, in this test's mount namespace only.
mount -t tmpfs -o mode=0755 tmpfs /opt || fail "cannot mount a tmpfs over /opt"
mkdir -p "$P" && mount --bind "$D$P" "$P" || fail "cannot mount the installed tree at $P"
cp "$D$P/share/p11-kit/modules/ukey.module" "$P11KIT_MODULES/ukey.module"
modules=$(ukc p11-kit list-modules 2>&1) || { show "p11-kit list-modules" "$modules"; fail "p11-kit list-modules"; }
assert_contains "$modules" "ukey: $P/$L/pkcs11/libukey-pkcs11.so" "p11-kit list-modules"
assert_contains "$modules" "token: alice" "p11-kit list-modules: the Key"
PROXY=$(ls /usr/lib/*/p11-kit-proxy.so 2>/dev/null | head -n1)
[[ -n $PROXY ]] || fail "p11-kit-proxy.so not found"
tokens=$(ukc pkcs11-tool --module "$PROXY" -L 2>&1) || { show "pkcs11-tool -L" "$tokens"; fail "pkcs11-tool through p11-kit-proxy"; }
n=$(grep -c 'token label *: alice$' <<<"$tokens" || true)
[[ $n -eq 1 ]] || { show "pkcs11-tool --module $PROXY -L" "$tokens"; fail "p11-kit-proxy shows the Key $n times, not once"; }
# And the installed ukey at its own path.
UKEY=$P/bin/ukey UKEY_MODULE='' ok --json list
jeq "$OUT" '[.keys[] | select(.initialized) | .label]' '["alice"]' "$P/bin/ukey"

check_no_pin_leaks
finish
