# tests/security/lib.sh: helpers of the attack tests (see CMakeLists.txt).
#
# Source it from a test script:   . "$(dirname "$0")/lib.sh"
# Scripts that also drive the CLI or ukeyd source tests/cli/lib.sh or
# tests/daemon/lib.sh first; this file then only adds what they lack.
#
# Environment (ctest sets it):
#   SECURITY_BIN_DIR   the folder of evil.so, p11probe and trustprobe
#   UKEY_MODULE        libukey-pkcs11.so
#   UKEY_SANITIZED     1 in the ASan+UBSan tree

# shellcheck source=../lib/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"

: "${SECURITY_BIN_DIR:?SECURITY_BIN_DIR must name the folder of evil.so, p11probe and trustprobe}"
: "${UKEY_MODULE:?UKEY_MODULE must name libukey-pkcs11.so}"
SEC_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TEST_NAME=security.$(basename "$0" .sh)
EVIL=$SECURITY_BIN_DIR/evil.so
P11PROBE=$SECURITY_BIN_DIR/p11probe
TRUSTPROBE=$SECURITY_BIN_DIR/trustprobe
# The other local user of the attacks.
NOBODY=65534

# Root makes setuid files and files of other users; without it these
# attacks cannot be staged.
need_root() {
    [[ $(id -u) == 0 ]] || skip "needs root (to stage files of another user and setuid programs)"
    need setpriv
}

# "${AS_NOBODY[@]}" CMD...: CMD as uid/gid 65534, no supplementary groups.
AS_NOBODY=(setpriv --reuid="$NOBODY" --regid="$NOBODY" --clear-groups --)

# run CMD...: sets OUT (stdout and stderr) and RC; never fails by itself.
OUT='' RC=0
run() {
    RC=0
    OUT=$(timeout --kill-after=5 60 "$@" 2>&1) || RC=$?
    [[ $RC -ne 124 && $RC -ne 137 ]] || { show output "$OUT"; fail "timed out: $*"; }
    return 0
}

# marker_absent SO WHAT / marker_present SO WHAT: whether evil.so's copy SO
# was loaded (its constructor leaves SO.marker).
marker_absent() {
    if [[ -e $1.marker ]]; then
        show "$1.marker" "$(cat "$1.marker")"
        fail "$2: the hostile module $1 was loaded"
    fi
}
marker_present() {
    [[ -e $1.marker ]] || { show output "$OUT"; fail "$2: the hostile module $1 was not loaded, so this step proves nothing"; }
    rm -f "$1.marker"
}

# sec_setup: $T, a private folder that other users may enter (0755, root's),
# on a file system that honours the setuid bit, removed on exit.
sec_setup() {
    local base
    for base in "${TMPDIR:-/tmp}" /tmp "$SECURITY_BIN_DIR"; do
        [[ -d $base ]] || continue
        "${AS_NOBODY[@]}" test -x "$base" || continue   # the other user must reach $T
        if ! findmnt -n -o OPTIONS -T "$base" | tr ',' '\n' | grep -qx nosuid; then
            T=$(mktemp -d "$base/ukey-$TEST_NAME.XXXXXX")
            break
        fi
    done
    [[ -n ${T:-} ]] || fail "no folder without nosuid that uid $NOBODY can enter (tried \$TMPDIR, /tmp, the build tree)"
    chmod 0755 "$T"
    trap test_cleanup EXIT
    trap 'exit 130' INT TERM
    log "env in $T"
}

# module_conf FILE STATE_DIR MODULE: a ukey.conf with one backend, logging to
# stderr at debug level.
module_conf() { ukey_conf "$2" "$3" backend "" debug >"$1"; }
