#!/usr/bin/env bash
# The Debian package (debian/): dpkg-buildpackage builds it from a copy of
# this source tree, with its debug symbols apart; lintian reports no error;
# installed with its dependencies (apt) into a fresh minimal Debian 12 root
# (mmdebstrap --variant=minbase, SoftHSM2, GnuTLS's p11tool, OpenSC and man
# there too), ukey works as an administrator meets it:
#   - `ukey --version`, `man ukey`;
#   - p11-kit lists ukey with its installed path;
#   - a SoftHSM2 Key (the default ukey.conf's backend) is seen exactly once
#     by `p11tool --list-tokens` and `pkcs11-tool --module p11-kit-proxy.so`:
#     the postinst hid SoftHSM2's own registration;
#   - ukeyd's unit is enabled;
# `apt-get remove` keeps the configuration and shows SoftHSM2's registration
# again (the Key stays usable without ukey); installing it again hides it
# again; `apt-get purge` leaves no file of ours behind.
. "$(dirname "$0")/../lib/common.sh"
[[ -n ${UKEY_SOURCE_DIR:-} ]] || skip "UKEY_SOURCE_DIR comes from ctest"
[[ $(id -u) == 0 ]] || fail "needs root (mmdebstrap and chroot)"
# Not a skip: in .ci/run a missing tool must fail (scripts/setup.sh installs them).
for c in dpkg-buildpackage lintian mmdebstrap chroot; do
    command -v "$c" >/dev/null || fail "$c is not installed (scripts/setup.sh installs it)"
done
test_dir_setup

# The root: mmdebstrap makes its /dev nodes and the test mounts nothing
# into it. mmdebstrap mounts /proc, /sys and /dev there while it works: if
# it is killed, those go before $T is removed, and $T is kept if any is
# left (removing it would reach into the host's /dev).
R=$T/root
unmount_root() {
    local m
    for m in $(findmnt -rn -o TARGET | grep -F "$T/" | sort -r); do umount -l "$m" || true; done
    if findmnt -rn -o TARGET | grep -qF "$T/"; then
        log "still mounted below $T: kept"
        UKEY_TEST_KEEP=1
    fi
}
on_cleanup unmount_root
in_root() { chroot "$R" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LC_ALL=C.UTF-8 "$@"; }

# UKEY_TEST_DEB_DIR: a folder with the .deb, .changes and dbgsym of this
# tree already built (to work on the rest of this test); else it builds them.
if [[ -n ${UKEY_TEST_DEB_DIR:-} ]]; then
    cp "$UKEY_TEST_DEB_DIR"/ukey*_amd64.deb "$UKEY_TEST_DEB_DIR"/ukey_*.changes "$UKEY_TEST_DEB_DIR"/ukey_*.buildinfo "$T"/
else
    step "dpkg-buildpackage -b in a copy of the source tree"
    mkdir "$T/src"
    (cd "$UKEY_SOURCE_DIR" && git ls-files -z --cached --others --exclude-standard | grep -zv '^build' \
        | tar --null -cf - -T -) | tar -xf - -C "$T/src"
    s=$SECONDS
    (cd "$T/src" && DEB_BUILD_OPTIONS="nocheck parallel=2" dpkg-buildpackage -b -us -uc) >"$T/build.log" 2>&1 \
        || { tail -n 40 "$T/build.log" >&2; fail "dpkg-buildpackage"; }
    log "package built in $((SECONDS - s)) s"
fi
DEB=$(ls "$T"/ukey_*_amd64.deb)
[[ -f $DEB ]] || fail "no ukey .deb"
ls "$T"/ukey-dbgsym_*_amd64.deb >/dev/null || fail "no separate debug symbols (ukey-dbgsym)"

step "its files: the module where p11-kit looks, the registration, the unit, man pages, the config as a conffile"
contents=$(dpkg-deb -c "$DEB" | awk '{print $6}' | sed 's|^\./|/|')
ML=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
for f in /usr/bin/ukey /usr/sbin/ukeyd "/usr/lib/$ML/pkcs11/libukey-pkcs11.so" /usr/share/p11-kit/modules/ukey.module \
         /lib/systemd/system/ukeyd.service /usr/share/man/man1/ukey.1.gz /usr/share/man/man5/ukey.conf.5.gz \
         /usr/share/man/man8/ukeyd.8.gz /usr/share/doc/ukey/copyright /etc/ukey/ukey.conf; do
    grep -qxF "$f" <<<"$contents" || fail "$f is not in the package"
done
assert_eq "$(dpkg-deb -f "$DEB" Package Architecture | tr '\n' ' ')" "Package: ukey Architecture: amd64 " "control"
assert_contains "$(dpkg-deb -I "$DEB" conffiles)" "/etc/ukey/ukey.conf" "conffiles"

step "lintian: no errors"
lintian --fail-on error "$T"/*.changes >"$T/lintian.log" 2>&1 \
    || { cat "$T/lintian.log" >&2; fail "lintian reports errors"; }
log "lintian: $(grep -c '^W:' "$T/lintian.log" || true) warnings, $(grep -c '^I:' "$T/lintian.log" || true) notes"

step "a fresh minimal Debian 12 root (mmdebstrap --variant=minbase) with SoftHSM2, p11tool, pkcs11-tool, man"
sources=()
for f in /etc/apt/sources.list.d/debian.sources /etc/apt/sources.list; do
    if [[ -s $f ]] && grep -q bookworm "$f"; then sources=("$f"); break; fi
done
s=$SECONDS
mmdebstrap --variant=minbase --skip=cleanup/apt/lists \
    --include=softhsm2,gnutls-bin,opensc,man-db,ca-certificates bookworm "$R" "${sources[@]}" \
    >"$T/mmdebstrap.log" 2>&1 || { tail -n 30 "$T/mmdebstrap.log" >&2; fail "mmdebstrap"; }
log "root made in $((SECONDS - s)) s"
[[ -x $R/usr/bin/softhsm2-util ]] || fail "no SoftHSM2 in the root"
[[ -c $R/dev/null ]] || fail "the root has no /dev/null"
cp /etc/resolv.conf "$R/etc/resolv.conf"
# Before ukey: SoftHSM2's package registered its module with p11-kit.
[[ -f $R/usr/share/p11-kit/modules/softhsm2.module ]] || fail "SoftHSM2 has no p11-kit registration"

step "apt-get install the .deb: its dependencies come with it"
cp "$DEB" "$R/tmp/ukey.deb"
chmod 0644 "$R/tmp/ukey.deb" # apt reads it as _apt
in_root apt-get install -y -q /tmp/ukey.deb >"$T/install.log" 2>&1 || { tail -n 30 "$T/install.log" >&2; fail "install"; }
assert_eq "$(in_root dpkg-query -W -f '${db:Status-Status}' ukey)" installed "dpkg status"
OURS=$(in_root dpkg -L ukey | LC_ALL=C sort)

step "ukey --version, man ukey"
assert_matches "$(in_root ukey --version)" '^ukey [0-9]+\.[0-9]+' "ukey --version"
man_text=$(in_root man -P cat ukey 2>&1) || { show "man ukey" "$man_text"; fail "man ukey"; }
assert_contains "$man_text" "NAME" "man ukey renders"
assert_contains "$man_text" "ukey list" "man ukey renders"
assert_contains "$(in_root man -P cat 5 ukey.conf 2>&1)" "ukey.conf" "man 5 ukey.conf"

step "p11-kit lists ukey with its path; SoftHSM2's own registration hidden by the postinst"
modules=$(in_root p11-kit list-modules 2>&1)
assert_contains "$modules" "ukey: /usr/lib/$ML/pkcs11/libukey-pkcs11.so" "p11-kit list-modules"
assert_not_contains "$modules" "softhsm2:" "SoftHSM2's registration hidden"
[[ -f $R/etc/pkcs11/modules/softhsm2.module ]] || fail "no override for SoftHSM2 in /etc/pkcs11/modules"
[[ -L $R/etc/systemd/system/multi-user.target.wants/ukeyd.service ]] || fail "ukeyd.service is not enabled"

step "a SoftHSM2 Key: p11tool and pkcs11-tool through p11-kit-proxy see it exactly once"
# softhsm2-util takes the PINs on its command line: a throwaway token of a
# throwaway root.
in_root softhsm2-util --init-token --free --label pkgkey --pin 246810 --so-pin 13579135 >/dev/null
tokens=$(in_root p11tool --list-tokens 2>&1)
assert_count "$tokens" "token=pkgkey" 1 "p11tool --list-tokens"
slots=$(in_root pkcs11-tool --module "/usr/lib/$ML/p11-kit-proxy.so" -L 2>&1)
assert_count "$slots" "token label        : pkgkey" 1 "pkcs11-tool -L through p11-kit-proxy"
assert_contains "$(in_root ukey list 2>&1)" "pkgkey" "ukey list"

step "apt-get remove: the configuration stays, SoftHSM2's registration is back (the Key works without ukey)"
in_root apt-get remove -y -q ukey >"$T/remove.log" 2>&1 || { tail -n 30 "$T/remove.log" >&2; fail "remove"; }
[[ -f $R/etc/ukey/ukey.conf ]] || fail "remove deleted the configuration"
[[ ! -e $R/etc/pkcs11/modules/softhsm2.module ]] || fail "the override outlived ukey"
assert_count "$(in_root p11tool --list-tokens 2>&1)" "token=pkgkey" 1 "p11tool after remove: the Key straight from SoftHSM2"

step "installed again: hidden again"
in_root dpkg -i /tmp/ukey.deb >"$T/reinstall.log" 2>&1 || { tail -n 30 "$T/reinstall.log" >&2; fail "reinstall"; }
assert_not_contains "$(in_root p11-kit list-modules 2>&1)" "softhsm2:" "hidden again"
assert_count "$(in_root p11tool --list-tokens 2>&1)" "token=pkgkey" 1 "p11tool after reinstall"
[[ ! -e $R/var/lib/ukey/package ]] || fail "the postinst left what the prerm kept"

step "apt-get purge: no file of ours left"
in_root apt-get purge -y -q ukey >"$T/purge.log" 2>&1 || { tail -n 30 "$T/purge.log" >&2; fail "purge"; }
left=()
while read -r f; do
    [[ -z $f || -d $R$f ]] && continue
    [[ -e $R$f || -L $R$f ]] && left+=("$f")
done <<<"$OURS"
((${#left[@]} == 0)) || fail "purge left the package's files: ${left[*]}"
# Not ours: the test's own copy in /tmp, logs, apt's cache, and man-db's
# cache of pages it rendered (`man ukey` above; its cron job drops pages
# whose source is gone).
stray=$(cd "$R" && find . -xdev \( -path ./tmp -o -path ./var/log -o -path ./var/cache/apt -o -path ./var/cache/man \) -prune \
    -o -name '*ukey*' -print)
[[ -z $stray ]] || fail "purge left: $stray"
[[ ! -e $R/etc/pkcs11/modules/softhsm2.module ]] || fail "the override outlived the purge"
log "ok"
