# tests/pcsc/harness.sh: a private pcscd with the vpcd virtual reader, and
# virtual cards to put in it, for tests that need a REAL pcscd.
#
# Source it from a bash test script:   . "$(dirname "$0")/harness.sh"
#
#   pcsc_start          private pcscd (own mount + network namespace), waits
#                       until its socket answers; exports PCSCLITE_CSOCK_NAME
#   pcsc_stop           SIGTERM pcscd (graceful), wait for it to exit
#   pcsc_kill           SIGKILL pcscd (a crash: stale socket/pid files remain)
#   pcsc_relaunch       start pcscd again after pcsc_stop/pcsc_kill: same
#                       namespaces, same readers; cards that were in stay in
#   pcsc_restart [kill] pcsc_stop (or pcsc_kill), then pcsc_relaunch
#   card_insert [SLOT]  start a vcard on vpcd slot SLOT (0 or 1, default 0);
#                       returns once its TCP connection to vpcd is up (pcscd
#                       notices the card 0.2-0.6 s later: its 400 ms polling)
#   card_remove [SLOT]  SIGTERM that vcard (connection closed = card removed)
#   timed_card in|out SLOT   card_insert/card_remove, then the watcher's line
#                       for it (the suite's wait_event) and its latency
#   pcsc_reader_name [SLOT]   "Virtual PCD 00 0SLOT"
#   pcsc_wait_card SLOT present|empty   poll pcscd (probe --list) until so
#   pcsc_cleanup [RC]   everything down, private dir removed (EXIT trap)
#   pcsc_ns_exec CMD... run CMD inside the private namespaces (debugging)
#   pcsc_track PID NAME a background process of the test (e.g. the daemon
#                       under test) that pcsc_cleanup must end first (SIGTERM,
#                       then SIGKILL after PCSC_WAIT seconds)
#   pcsc_wait_until SECONDS CMD...   bounded polling helper (50 ms steps)
#   pcsc_now_ms         epoch milliseconds
# pcsc_start installs an EXIT trap (pcsc_cleanup) and INT/TERM traps (exit
# 130); a test needing its own EXIT trap calls `pcsc_cleanup $?` from it.
#
# Required: PCSC_BIN_DIR, the directory holding the built `vcard` and `probe`
# (tests/pcsc/CMakeLists.txt). Optional environment:
#   PCSC_WAIT           seconds any single bounded wait may take (default 30)
#   PCSC_VPCD_PORT      vpcd base TCP port, slot N uses PORT+N (default 35963;
#                       the port lives in the private network namespace, so it
#                       can never clash with anything on the host)
#   PCSC_PCSCD_USER     when run as root: user pcscd runs as (default nobody;
#                       empty = stay root)
#   PCSC_PCSCD_ARGS     extra pcscd options (e.g. --apdu)
#   PCSC_NS_MODE        auto (default), root, chroot or userns: how the
#                       private namespaces are made (auto: root if EUID 0,
#                       then chroot where / is not a mount point, then
#                       userns; userns otherwise)
#   UKEY_TEST_NO_NAMESPACES=1  this machine cannot have namespaces: skip
#                       (exit 77) instead of failing
#   UKEY_TEST_KEEP=1    keep the private dir (its path is printed)
#
# After pcsc_start:
#   PCSC_DIR            private dir (0700): pcscd.log, vcardN.log, run/ ...
#   PCSCLITE_CSOCK_NAME $PCSC_DIR/run/pcscd/pcscd.comm (exported; libpcsclite
#                       clients started from now on talk to the private pcscd)
#   PCSC_PCSCD_PID      pid of pcscd
#   PCSC_LAST_INSERT_MS epoch ms when the last card_insert started
#   PCSC_LAST_REMOVE_MS epoch ms when the last card_remove started
#   PCSC_NS_MODE        root, chroot or userns, the mode that worked
#
# How (details and the reasons in README.md): pcscd 1.9.9 hard-codes
# /run/pcscd/pcscd.{comm,pid} (only clients read PCSCLITE_CSOCK_NAME), and
# vpcd listens on 0.0.0.0. So a namespace holder process owns a private mount
# namespace, where $PCSC_DIR/run is bind-mounted on /run and an empty tmpfs
# hides /usr/lib/pcsc/drivers (no USB reader of the host is touched), and a
# private network namespace, where vpcd's port is only reachable by the vcards
# we start in it. pcscd and the vcards are entered into it with nsenter; the
# unix socket, a path in $PCSC_DIR, is reachable from the host. Non-root: the
# same inside an unprivileged user namespace (unshare --map-root-user).

# shellcheck shell=bash disable=SC2034  # PCSC_* variables are read by the test
: "${PCSC_WAIT:=30}"   # a bound, not a delay: waits end when the condition holds
: "${PCSC_VPCD_PORT:=35963}"   # 0x8C7B, vpcd's default
PCSC_VPCD_DRIVER=${PCSC_VPCD_DRIVER:-/usr/lib/pcsc/drivers/serial/libifdvpcd.so}
PCSC_READER_PREFIX="Virtual PCD 00 0"
PCSC_DIR=${PCSC_DIR:-}
PCSC_HOLDER_PID=
PCSC_PCSCD_PID=
PCSC_NS_MODE=${PCSC_NS_MODE:-auto}
PCSC_NSENTER=()
PCSC_AS_USER=()
declare -gA PCSC_VCARD_PID=()
declare -gA PCSC_TRACKED=()

pcsc__log()  { printf '[pcsc] %s\n' "$*" >&2; }
pcsc__die()  { printf '[pcsc] FAIL: %s\n' "$*" >&2; exit 1; }
# The environment cannot run a private pcscd. That fails the test: a suite
# that skips hides regressions. Only UKEY_TEST_NO_NAMESPACES=1, set by whoever
# knows the machine cannot have namespaces (a locked-down container), turns
# it into a skip (exit 77).
pcsc__skip() {
    if [[ ${UKEY_TEST_NO_NAMESPACES:-0} == 1 ]]; then
        printf '[pcsc] SKIP (UKEY_TEST_NO_NAMESPACES=1): %s\n' "$*" >&2
        exit 77
    fi
    printf '[pcsc] FAIL: %s (UKEY_TEST_NO_NAMESPACES=1 skips the PC/SC suites where they cannot run)\n' "$*" >&2
    exit 1
}

# The waiting helpers are tests/lib/common.sh's; these names are the
# harness's API.
# shellcheck source=../lib/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
pcsc_now_ms() { now_ms; }
pcsc_wait_until() { wait_until "$@"; }
pcsc__alive() { alive "$1"; }
pcsc__dead() { ! pcsc__alive "$1"; }

# pcsc__end PID SIGNAL WHAT: signal one process we started, wait (bounded)
# for it to end, SIGKILL it if it does not. (The harness disowns its
# background processes, bash still reaps them; `wait` is for tracked jobs.)
pcsc__end() {
    local pid=$1 sig=$2 what=$3
    [[ -n $pid ]] || return 0
    kill "-$sig" "$pid" 2>/dev/null || true
    if ! pcsc_wait_until "$PCSC_WAIT" pcsc__dead "$pid"; then
        pcsc__log "$what (pid $pid) ignored SIG$sig for ${PCSC_WAIT}s: SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        pcsc_wait_until "$PCSC_WAIT" pcsc__dead "$pid" || pcsc__log "$what (pid $pid) will not die"
    fi
    wait "$pid" 2>/dev/null || true
}

# pcsc_test_messages WHAT: log (with epoch ms), step and fail for the
# harness's own tests (smoke.sh, watch.sh): fail shows $EV (the events of
# the process under test, called WHAT), $EV.err and the tail of pcscd's log.
pcsc_test_messages() {
    PCSC_EV_WHAT=$1
    log()  { printf '[%s] %s %s\n' "$TEST_NAME" "$(pcsc_now_ms)" "$*" >&2; }
    step() { printf '\n[%s] === %s\n' "$TEST_NAME" "$*" >&2; }
    fail() {
        printf '[%s] FAIL: %s\n' "$TEST_NAME" "$*" >&2
        if [[ -n ${EV:-} && -f $EV ]]; then
            printf '%s\n' "----- $PCSC_EV_WHAT ($EV) -----" >&2
            cat "$EV" >&2
        fi
        if [[ -n ${EV:-} && -s $EV.err ]]; then
            printf '%s\n' "----- stderr ($EV.err) -----" >&2
            cat "$EV.err" >&2
        fi
        if [[ -n ${PCSC_DIR:-} && -f $PCSC_DIR/pcscd.log ]]; then
            printf '%s\n' "----- pcscd.log (tail) -----" >&2
            tail -n 40 "$PCSC_DIR/pcscd.log" >&2
        fi
        exit 1
    }
}

# The event file $EV of the harness's tests: ev_find REGEX FROM prints the
# first line after line FROM matching REGEX (ERE); ev_found: whether there is
# one; ev_mark: the line count now (a FROM for later). With alive_or_gone,
# liveness is sampled before looking (README: a process that prints and exits
# at once must not be mistaken for one that died without printing).
ev_find() { awk -v from="$2" -v re="$1" 'NR > from && $0 ~ re { print; exit }' "$EV"; }
ev_found() { [[ -n $(ev_find "$1" "$2") ]]; }
ev_mark() { wc -l <"$EV"; }
# ev_wait PID WHAT REGEX FROM: waits (bounded) for such a line while process
# PID (WHAT: probe, driver) lives, prints it.
ev_wait() {
    local rc=0
    pcsc_wait_until "$PCSC_WAIT" alive_or_gone "$1" ev_found "$3" "$4" || rc=$?
    [[ $rc -ne 2 ]] || fail "the $2 exited without event /$3/"
    [[ $rc -eq 0 ]] || fail "no $2 event /$3/ within ${PCSC_WAIT}s"
    ev_find "$3" "$4"
}
# ev_ms LINE: the epoch ms an event line starts with.
ev_ms() { printf '%s\n' "${1%% *}"; }
# re_name NAME: a reader name as a regex matching whole event words
# ("card-inserted Virtual PCD 00 00 atr=").
re_name() { printf '%s' "${1// /\\ }"; }
# timed_card in|out SLOT: the virtual card into (out of) reader SLOT, then
# the watcher's event line for it, through the suite's own wait_event REGEX
# FROM. The line in EV_LINE; the ms from card_insert (card_remove) to it in
# EV_LATENCY.
timed_card() {
    local m re since
    re="$(re_name "$(pcsc_reader_name "$2")")"
    m=$(ev_mark)
    if [[ $1 == in ]]; then
        card_insert "$2"
        re="card-inserted $re atr=3B80800101" since=$PCSC_LAST_INSERT_MS
    else
        card_remove "$2"
        re="card-removed $re" since=$PCSC_LAST_REMOVE_MS
    fi
    EV_LINE=$(wait_event "^[0-9]+ $re\$" "$m")
    EV_LATENCY=$(($(ev_ms "$EV_LINE") - since))
}

pcsc_reader_name() { printf '%s%s' "$PCSC_READER_PREFIX" "${1:-0}"; }

pcsc__need() {
    local c
    for c in "$@"; do
        command -v "$c" >/dev/null 2>&1 || pcsc__skip "required command '$c' not installed"
    done
}

# pcsc_ns_exec CMD...: run CMD in the private mount+network namespaces.
pcsc_ns_exec() { "${PCSC_NSENTER[@]}" -- "$@"; }

pcsc__check_or_dead() { alive_or_gone "$@"; }

pcsc__holder_up() { pcsc__check_or_dead "$PCSC_HOLDER_PID" test -e "$PCSC_DIR/ns.ready"; }

# Runs inside the new namespaces (as root, or as the user namespace's root),
# $1 = PCSC_DIR, $2 = vpcd driver, $3 = pcscd's USB driver directory:
#  - loopback up (a new network namespace has it down);
#  - run/ bind-mounted on /run: pcscd's hard-coded /run/pcscd is ours;
#  - the vpcd driver bind-mounted onto a placeholder, /run/libifdvpcd.so (a
#    copy would not do: $PCSC_DIR may live on a noexec /tmp);
#  - an empty tmpfs on the USB driver directory: no *.bundle, so pcscd
#    disables USB and never touches a real reader of the host.
# Order matters: a plain --bind does not carry submounts along, and the driver
# must be bound before its directory is hidden.
# shellcheck disable=SC2016
PCSC__NS_SETUP='set -e
ip link set lo up
mount --bind "$1/run" /run
mount --bind "$2" /run/libifdvpcd.so
if [ -d "$3" ]; then mount -t tmpfs -o mode=0755,size=64k pcsc-drivers "$3"; fi
: > "$1/ns.ready"
exec sleep infinity'

# pcsc__root_mounts_stay_here: in a chroot, whether mounts made in a new
# mount namespace stay there even though its propagation cannot be made
# private (unshare --propagation needs "/" to be a mount point, which a
# chroot's root is not). They do when the filesystem holding "/" is not
# shared with another namespace in pid 1's view (a container's root usually
# is private) and /run is not a shared mount of its own. Pid 1's
# mountinfo is the only one that shows the mount holding a chroot.
pcsc__root_mounts_stay_here() {
    local dev run_prop
    dev=$(stat -c '%Hd:%Ld' /) || return 1
    [[ -r /proc/1/mountinfo ]] || return 1
    # Field 3 is major:minor; optional fields (7 on) hold shared:N.
    if awk -v dev="$dev" '$3 == dev { for (i = 7; $i != "-"; i++) if ($i ~ /^shared:/) bad = 1 }
                          END { exit bad ? 0 : 1 }' /proc/1/mountinfo; then
        return 1
    fi
    run_prop=$(findmnt -n -o PROPAGATION --mountpoint /run 2>/dev/null || true)
    [[ $run_prop != shared* ]]
}

# pcsc__try_holder root|chroot|userns: start the namespace holder, a `sleep
# infinity` owning the private mount and network namespaces, so that pcscd can
# be restarted into the same ones and the vcards keep their network across a
# pcscd restart. Returns non-zero if the namespaces cannot be created.
# chroot: root where "/" is not a mount point (a chroot of a Debian root);
# the new namespace keeps the propagation it has, which
# pcsc__root_mounts_stay_here checked to be private. (A user namespace,
# whose mounts never propagate out, is refused to a chrooted process.)
pcsc__try_holder() {
    local mode=$1 usbdir
    usbdir=$(pcscd --version 2>&1 | sed -n 's/.*usbdropdir=\([^ ]*\).*/\1/p')
    local -a unshare_opts=(--mount --net --propagation private)
    # --root --wd: the holder's root and folder. Entering a mount namespace
    # sets the root to the namespace's own, which in a chroot is the host's
    # "/", not the chroot.
    PCSC_NSENTER=(nsenter --root --wd --mount --net)
    if [[ $mode == userns ]]; then
        unshare_opts=(--user --map-root-user "${unshare_opts[@]}")
        PCSC_NSENTER=(nsenter --root --wd --user --mount --net --preserve-credentials)
    elif [[ $mode == chroot ]]; then
        mountpoint -q / && return 1
        if ! pcsc__root_mounts_stay_here; then
            printf 'chroot mode refused: the filesystem of / (or /run) is a shared mount; our mounts would show outside. Make the chroot a private mount point first: mount --bind DIR DIR; mount --make-private DIR\n' \
                >>"$PCSC_DIR/ns.log"
            return 1
        fi
        unshare_opts=(--mount --net --propagation unchanged)
    fi
    rm -f "$PCSC_DIR/ns.ready"
    printf '== %s mode\n' "$mode" >>"$PCSC_DIR/ns.log"
    unshare "${unshare_opts[@]}" -- sh -c "$PCSC__NS_SETUP" sh \
        "$PCSC_DIR" "$PCSC_VPCD_DRIVER" "${usbdir:-/usr/lib/pcsc/drivers}" \
        </dev/null >>"$PCSC_DIR/ns.log" 2>&1 &
    PCSC_HOLDER_PID=$!
    disown "$PCSC_HOLDER_PID"
    PCSC_NSENTER+=(--target "$PCSC_HOLDER_PID")
    if pcsc_wait_until "$PCSC_WAIT" pcsc__holder_up; then
        PCSC_NS_MODE=$mode
        return 0
    fi
    pcsc__end "$PCSC_HOLDER_PID" KILL "namespace holder"
    PCSC_HOLDER_PID=
    return 1
}

# Root: plain namespaces, pcscd then runs as PCSC_PCSCD_USER without any
# capability; if that is not allowed (a container without CAP_SYS_ADMIN),
# a user namespace as for non-root users, pcscd as (unprivileged) uid 0.
pcsc__start_holder() {
    local -a modes=(userns)
    if [[ $EUID -eq 0 ]]; then modes=(root chroot userns); fi
    if [[ ${PCSC_NS_MODE:-auto} != auto ]]; then modes=("$PCSC_NS_MODE"); fi
    local mode
    for mode in "${modes[@]}"; do
        pcsc__try_holder "$mode" && break
    done
    if [[ -z $PCSC_HOLDER_PID ]]; then
        cat "$PCSC_DIR/ns.log" >&2
        pcsc__skip "cannot create private mount+network namespaces (tried: ${modes[*]}; non-root needs unprivileged user namespaces; ns.log above says why)"
    fi

    PCSC_AS_USER=()
    if [[ $PCSC_NS_MODE != userns && -n ${PCSC_PCSCD_USER-nobody} ]]; then
        local user=${PCSC_PCSCD_USER-nobody}
        id "$user" >/dev/null 2>&1 || pcsc__die "PCSC_PCSCD_USER=$user: no such user"
        pcsc__need setpriv
        chown "$user:" "$PCSC_DIR/run"
        # No capabilities at all, no supplementary groups, no new privileges.
        PCSC_AS_USER=(setpriv --reuid="$user" --regid="$(id -g "$user")" --clear-groups
                      --inh-caps=-all --bounding-set=-all --no-new-privs)
    fi
}

pcsc__list_ok() { timeout -k 1 5 "$PCSC_BIN_DIR/probe" --list >/dev/null 2>&1; }
pcsc__socket_answers() { pcsc__check_or_dead "$PCSC_PCSCD_PID" pcsc__list_ok; }

# Starts pcscd in the holder's namespaces and waits until its socket answers.
pcsc__launch_pcscd() {
    # A SIGKILLed pcscd leaves pcscd.comm and pcscd.pid behind; the next one
    # would refuse to start if the stale pid happened to be alive again.
    rm -f "$PCSC_DIR/run/pcscd/pcscd.comm" "$PCSC_DIR/run/pcscd/pcscd.pid"
    local -a extra=()
    # shellcheck disable=SC2206
    [[ -n ${PCSC_PCSCD_ARGS:-} ]] && extra=($PCSC_PCSCD_ARGS)
    printf '\n===== %s pcscd start\n' "$(date '+%F %T.%3N')" >>"$PCSC_DIR/pcscd.log"
    "${PCSC_NSENTER[@]}" -- "${PCSC_AS_USER[@]}" \
        pcscd --foreground --debug --config /run/reader.conf.d "${extra[@]}" \
        </dev/null >>"$PCSC_DIR/pcscd.log" 2>&1 &
    PCSC_PCSCD_PID=$!
    disown "$PCSC_PCSCD_PID"  # no "Killed" job notices from bash for pcsc_kill
    local rc=0
    pcsc_wait_until "$PCSC_WAIT" pcsc__socket_answers || rc=$?
    if [[ $rc -ne 0 ]]; then
        tail -n 30 "$PCSC_DIR/pcscd.log" >&2
        pcsc__die "pcscd did not answer on $PCSCLITE_CSOCK_NAME within ${PCSC_WAIT}s (rc $rc)"
    fi
}

pcsc_start() {
    [[ -n ${PCSC_BIN_DIR:-} && -x $PCSC_BIN_DIR/vcard && -x $PCSC_BIN_DIR/probe ]] \
        || pcsc__die "PCSC_BIN_DIR must name the directory with the built vcard and probe"
    pcsc__need pcscd unshare nsenter ip mount mountpoint findmnt stat awk sed timeout
    [[ -r $PCSC_VPCD_DRIVER ]] || pcsc__skip "vpcd driver $PCSC_VPCD_DRIVER not installed (vsmartcard-vpcd)"
    [[ -z $PCSC_HOLDER_PID ]] || pcsc__die "pcsc_start called twice"

    PCSC_DIR=$(mktemp -d "${TMPDIR:-/tmp}/ukey-pcsc.XXXXXX")
    chmod 0700 "$PCSC_DIR"
    trap pcsc__on_exit EXIT
    trap 'exit 130' INT TERM

    # run/ becomes /run for pcscd: the only place it writes (pcscd/ with the
    # socket and pid file); also holds its reader.conf.d and the driver.
    mkdir -m 0755 "$PCSC_DIR/run" "$PCSC_DIR/run/reader.conf.d"
    : > "$PCSC_DIR/run/libifdvpcd.so"
    # One reader.conf entry; vpcd turns it into two readers ("Virtual PCD 00
    # 00" and "... 00 01") listening on PORT and PORT+1 (on all interfaces of
    # the private network namespace). DEVICENAME /dev/null:PORT = server mode;
    # HOST:PORT (vpcd connects to the card) aborts pcscd, see README.md.
    cat >"$PCSC_DIR/run/reader.conf.d/vpcd" <<EOF
FRIENDLYNAME "Virtual PCD"
DEVICENAME   /dev/null:$PCSC_VPCD_PORT
LIBPATH      /run/libifdvpcd.so
CHANNELID    $PCSC_VPCD_PORT
EOF
    chmod 0644 "$PCSC_DIR/run/reader.conf.d/vpcd"

    pcsc__start_holder
    export PCSCLITE_CSOCK_NAME=$PCSC_DIR/run/pcscd/pcscd.comm
    pcsc__launch_pcscd
    pcsc__log "pcscd $PCSC_PCSCD_PID up ($PCSC_NS_MODE namespaces${PCSC_AS_USER[*]:+, as ${PCSC_PCSCD_USER-nobody}}; socket $PCSCLITE_CSOCK_NAME)"
}

pcsc_stop() {
    [[ -n $PCSC_PCSCD_PID ]] || return 0
    pcsc__end "$PCSC_PCSCD_PID" TERM pcscd
    PCSC_PCSCD_PID=
}

pcsc_kill() {
    [[ -n $PCSC_PCSCD_PID ]] || return 0
    pcsc__end "$PCSC_PCSCD_PID" KILL pcscd
    PCSC_PCSCD_PID=
}

# pcsc_relaunch: start pcscd again after pcsc_stop/pcsc_kill (same
# namespaces, same readers; vcards still running reconnect by themselves).
pcsc_relaunch() {
    [[ -z $PCSC_PCSCD_PID ]] || pcsc__die "pcsc_relaunch: pcscd $PCSC_PCSCD_PID still running"
    pcsc__launch_pcscd
    pcsc__log "pcscd started again as $PCSC_PCSCD_PID"
}

pcsc_restart() {
    if [[ ${1:-} == kill ]]; then pcsc_kill; else pcsc_stop; fi
    pcsc_relaunch
}

pcsc__vcard_ready() {
    pcsc__check_or_dead "${PCSC_VCARD_PID[$1]}" test -s "$PCSC_DIR/vcard$1.ready"
}

card_insert() {
    local slot=${1:-0}
    [[ -z ${PCSC_VCARD_PID[$slot]:-} ]] || pcsc__die "card_insert $slot: a card is already in"
    rm -f "$PCSC_DIR/vcard$slot.ready"
    PCSC_LAST_INSERT_MS=$(pcsc_now_ms)
    "${PCSC_NSENTER[@]}" -- "$PCSC_BIN_DIR/vcard" -v --port $((PCSC_VPCD_PORT + slot)) \
        --connect-timeout-ms $((PCSC_WAIT * 1000)) --ready-file "$PCSC_DIR/vcard$slot.ready" \
        </dev/null >>"$PCSC_DIR/vcard$slot.log" 2>&1 &
    PCSC_VCARD_PID[$slot]=$!
    disown "${PCSC_VCARD_PID[$slot]}"
    if ! pcsc_wait_until "$PCSC_WAIT" pcsc__vcard_ready "$slot"; then
        tail -n 20 "$PCSC_DIR/vcard$slot.log" >&2
        pcsc__die "vcard on slot $slot did not connect to vpcd"
    fi
}

card_remove() {
    local slot=${1:-0}
    [[ -n ${PCSC_VCARD_PID[$slot]:-} ]] || pcsc__die "card_remove $slot: no card in"
    PCSC_LAST_REMOVE_MS=$(pcsc_now_ms)
    pcsc__end "${PCSC_VCARD_PID[$slot]}" TERM "vcard $slot"
    unset "PCSC_VCARD_PID[$slot]"
}

# pcsc_wait_card SLOT present|empty: as seen by pcscd (probe --list).
pcsc__card_is() {
    local out
    out=$(timeout -k 1 5 "$PCSC_BIN_DIR/probe" --list 2>/dev/null) || return 1
    grep -q "^reader $(pcsc_reader_name "$1") $2" <<<"$out"
}
pcsc_wait_card() { pcsc_wait_until "$PCSC_WAIT" pcsc__card_is "$1" "$2"; }

# pcsc_track PID [NAME]: pcsc_cleanup ends this process first.
pcsc_track() { PCSC_TRACKED[$1]=${2:-process}; }

# pcsc_cleanup [RC]: tracked processes, vcards, pcscd and the namespaces
# down; the private dir is removed unless UKEY_TEST_KEEP=1 or RC says the
# test failed (then it is kept and its path printed, unless
# UKEY_TEST_KEEP_FAILED=0). Safe to call twice.
pcsc_cleanup() {
    local rc=${1:-0} slot pid
    for pid in "${!PCSC_TRACKED[@]}"; do
        pcsc__end "$pid" TERM "${PCSC_TRACKED[$pid]}"
    done
    PCSC_TRACKED=()
    for slot in "${!PCSC_VCARD_PID[@]}"; do
        pcsc__end "${PCSC_VCARD_PID[$slot]}" TERM "vcard $slot"
    done
    PCSC_VCARD_PID=()
    pcsc_stop
    if [[ -n $PCSC_HOLDER_PID ]]; then
        pcsc__end "$PCSC_HOLDER_PID" TERM "namespace holder"
        PCSC_HOLDER_PID=
    fi
    if [[ -n $PCSC_DIR && -d $PCSC_DIR ]]; then
        if [[ ${UKEY_TEST_KEEP:-0} == 1 ]] \
            || [[ $rc -ne 0 && $rc -ne 77 && ${UKEY_TEST_KEEP_FAILED:-1} == 1 ]]; then
            pcsc__log "keeping $PCSC_DIR"
        else
            rm -rf -- "$PCSC_DIR"
        fi
        PCSC_DIR=
    fi
}

# The EXIT trap pcsc_start installs. A test that needs its own EXIT trap
# should call `pcsc_cleanup $?` from it instead.
pcsc__on_exit() {
    local rc=$?
    trap - EXIT
    pcsc_cleanup "$rc"
    exit "$rc"
}
