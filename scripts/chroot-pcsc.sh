#!/usr/bin/env bash
# scripts/chroot-pcsc.sh [DIR]
# The PC/SC suites in a chroot of a fresh Debian 12 root, where "/" is not a
# mount point and no systemd made /run/pcscd (tests/pcsc/README.md,
# "Containers and chroots"). As root:
#   1. debootstrap --variant=minbase bookworm DIR (default
#      /var/tmp/ukey-chroot), unless DIR already holds a root;
#   2. /proc mounted in it, the repository bind-mounted at the same path;
#   3. scripts/setup.sh inside (the README's packages), a Release build of
#      what the suites need in build-chroot/;
#   4. ctest -L pcsc plus daemon.pcsc and daemon.pcscd_restart inside;
#   5. both mounts undone, whatever happened. The root stays for next time.
# UKEY_DEBIAN_MIRROR overrides http://deb.debian.org/debian.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DIR=${1:-/var/tmp/ukey-chroot}
MIRROR=${UKEY_DEBIAN_MIRROR:-http://deb.debian.org/debian}
[[ $EUID -eq 0 ]] || { echo "chroot-pcsc: run as root" >&2; exit 2; }

if [[ ! -x $DIR/usr/bin/apt-get ]]; then
    command -v debootstrap >/dev/null || apt-get install -y -q debootstrap || exit 1
    debootstrap --variant=minbase bookworm "$DIR" "$MIRROR" || { echo "chroot-pcsc: debootstrap failed" >&2; exit 1; }
fi
cp /etc/resolv.conf "$DIR/etc/resolv.conf"

undo() {
    umount "$DIR$ROOT" 2>/dev/null
    umount "$DIR/proc" 2>/dev/null
}
trap undo EXIT
mountpoint -q "$DIR/proc" || mount -t proc proc "$DIR/proc" || exit 1
mkdir -p "$DIR$ROOT"
mountpoint -q "$DIR$ROOT" || mount --bind "$ROOT" "$DIR$ROOT" || exit 1

# shellcheck disable=SC2016
chroot "$DIR" /bin/bash -c '
set -e
cd "$1"
echo "chroot-pcsc: / is $(mountpoint / 2>&1)"
bash scripts/setup.sh
cmake -S . -B build-chroot -G Ninja -DCMAKE_BUILD_TYPE=Release -DUKEY_WERROR=ON >/dev/null
cmake --build build-chroot --target ukeyd ukey ukey-pkcs11 ukey-pcsc-vcard ukey-pcsc-probe \
    ukey-pcsc-watch-driver ukey-daemon-sockpoke ukey-daemon-slotwait
ctest --test-dir build-chroot --output-on-failure -R "^(pcsc\..*|daemon\.pcsc|daemon\.pcscd_restart)$"
' chroot-pcsc "$ROOT"
