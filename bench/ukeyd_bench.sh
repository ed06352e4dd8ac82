#!/usr/bin/env bash
# bench/ukeyd_bench.sh: how fast ukeyd passes a card event on, and what it
# costs while idle. Uses the private pcscd + vpcd harness of tests/pcsc and
# the helpers of tests/daemon (a private SoftHSM2, ukey.conf and socket).
#
#   bench/ukeyd_bench.sh [--cycles N] [--idle SECONDS] [--build DIR]
#
# 1. Detection latency, over N (default 25) card insert/remove cycles: the
#    time from pcscd's notification to the event reaching a subscriber. The
#    harness's `probe` (an independent libpcsclite client blocked in
#    SCardGetStatusChange, like ukeyd) stamps when pcscd told it; a
#    `ukey --json watch` subscriber's lines are stamped on arrival (perl,
#    Time::HiRes, unbuffered). Latency = arrival - probe's stamp. Also shown:
#    the daemon's own time_ms - probe (how late ukeyd's wait returned) and
#    arrival - time_ms (ukeyd's handling and delivery). Target: p50 <= 20 ms.
# 2. Idle cost: CPU (utime+stime from /proc/PID/stat, and with the reaped
#    scanner children cutime+cstime) of an idle ukeyd over SECONDS (default
#    60), pcscd running with no card, once with the fallback rescan off
#    (rescan_interval = 0) and once with the default 10 s; VmRSS and VmHWM.
#
# Needs root or unprivileged user namespaces (the pcsc harness), perl, jq.
# Runs about 2.5 min with the defaults. Exit 0 whatever the numbers.
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
CYCLES=25
IDLE=60
BUILD=$SRC/build
while (($#)); do
    case $1 in
    --cycles) CYCLES=$2; shift 2 ;;
    --idle) IDLE=$2; shift 2 ;;
    --build) BUILD=$2; shift 2 ;;
    -h | --help) sed -n '2,22p' "$0"; exit 0 ;;
    *) echo "ukeyd_bench: unknown option $1" >&2; exit 2 ;;
    esac
done
export UKEYD=${UKEYD:-$BUILD/tools/ukeyd/ukeyd} UKEY=${UKEY:-$BUILD/tools/ukey/ukey}
export UKEY_MODULE=${UKEY_MODULE:-$BUILD/p11/libukey-pkcs11.so} PCSC_BIN_DIR=${PCSC_BIN_DIR:-$BUILD/tests/pcsc}
for f in "$UKEYD" "$UKEY" "$UKEY_MODULE" "$PCSC_BIN_DIR/probe" "$PCSC_BIN_DIR/vcard"; do
    [[ -e $f ]] || { echo "ukeyd_bench: $f not built (cmake --build $BUILD --target ukeyd ukey ukey-pkcs11 ukey-pcsc-probe ukey-pcsc-vcard)" >&2; exit 2; }
done
perl -MTime::HiRes=time -e 1 || { echo "ukeyd_bench: needs perl with Time::HiRes" >&2; exit 2; }

# The tests' helpers: a private environment, ukeyd start/stop, waits.
# shellcheck source=../tests/daemon/lib.sh
. "$SRC/tests/daemon/lib.sh"
TEST_NAME=ukeyd-bench
UKEY_TEST_KEEP=${UKEY_TEST_KEEP:-0}
DAEMON_PCSC=true
DAEMON_RESCAN=0
daemon_setup
pcsc_setup
daemon_start

# --- 1. latency ---------------------------------------------------------------
"$PCSC_BIN_DIR/probe" >"$T/probe.out" 2>"$T/probe.err" &
PROBE=$!
wait_for "probe up" 10 grep -q 'reader-added' "$T/probe.out"
"$UKEY" --json watch --socket "$SOCK" --events key-inserted,key-removed 2>"$T/watch.err" \
    | perl -MTime::HiRes=time -ne 'BEGIN{$|=1} printf "%.3f %s", time*1000, $_' >"$T/watch.out" &
wait_for "subscriber" 10 subscribers_at_least 1
n_watch() { grep -c "\"event\":\"$1\"" "$T/watch.out" || true; }
n_probe() { grep -c " $1 " "$T/probe.out" || true; }
has_n() { (($(n_watch "$1") >= $3 && $(n_probe "$2") >= $3)); }
echo "latency: $CYCLES insert/remove cycles..." >&2
for ((i = 1; i <= CYCLES; i++)); do
    card_insert 0
    wait_for "insert #$i" 10 has_n key-inserted card-inserted "$i"
    card_remove 0
    wait_for "remove #$i" 10 has_n key-removed card-removed "$i"
done
kill "$PROBE"
# Pair the i-th probe event with the i-th event of the subscriber.
grep ' card-inserted ' "$T/probe.out" | awk '{print $1}' >"$T/p.ins"
grep ' card-removed ' "$T/probe.out" | awk '{print $1}' >"$T/p.rem"
for ev in key-inserted key-removed; do
    grep "\"event\":\"$ev\"" "$T/watch.out" | while read -r t json; do
        printf '%s %s\n' "$t" "$(jq -r '.time_ms' <<<"$json")"
    done >"$T/w.$ev"
done
paste -d' ' "$T/p.ins" "$T/w.key-inserted" >"$T/ins"
paste -d' ' "$T/p.rem" "$T/w.key-removed" >"$T/rem"
# stats FILE COLUMN-EXPRESSION: p50 p90 max (ms) of an awk expression over
# the columns probe_ms arrival_ms daemon_time_ms.
stats() {
    awk "{print $2}" "$1" | sort -n | awk '{v[NR]=$1} END{
        p50=v[int((NR+1)/2)]; p90=v[int(NR*0.9+0.999)]; if (p90=="") p90=v[NR];
        printf "p50 %6.1f  p90 %6.1f  max %6.1f  (n=%d)", p50, p90, v[NR], NR}'
}
cat "$T/ins" "$T/rem" >"$T/all"
RESULT_LAT=$(
    printf '%-34s %s\n' "insert: probe -> subscriber" "$(stats "$T/ins" '$2-$1')"
    printf '%-34s %s\n' "remove: probe -> subscriber" "$(stats "$T/rem" '$2-$1')"
    printf '%-34s %s\n' "both:   probe -> subscriber" "$(stats "$T/all" '$2-$1')"
    printf '%-34s %s\n' "both:   probe -> ukeyd's time_ms" "$(stats "$T/all" '$3-$1')"
    printf '%-34s %s\n' "both:   time_ms -> subscriber" "$(stats "$T/all" '$2-$3')"
)

# --- 2. idle cost -------------------------------------------------------------
cpu_ticks() { awk '{print $14+$15, $14+$15+$16+$17}' "/proc/$1/stat"; }
idle_run() {   # RESCAN: restart ukeyd with it, idle for IDLE s
    sed -i "s/^rescan_interval = .*/rescan_interval = $1/" "$T/ukey.conf"
    daemon_stop 2
    daemon_start
    sleep 2   # its first scan and the PC/SC start are not idle time
    local a b hz
    hz=$(getconf CLK_TCK)
    read -r a0 b0 < <(cpu_ticks "$UKEYD_PID")
    echo "idle: ${IDLE} s with rescan_interval = $1..." >&2
    sleep "$IDLE"
    read -r a b < <(cpu_ticks "$UKEYD_PID")
    printf 'rescan_interval = %-3s  CPU %5d ms own, %5d ms with scanner children over %s s (%.3f%% of a core); VmRSS %s kB, VmHWM %s kB\n' \
        "$1" $(((a - a0) * 1000 / hz)) $(((b - b0) * 1000 / hz)) "$IDLE" \
        "$(awk -v t=$((b - b0)) -v hz="$hz" -v s="$IDLE" 'BEGIN{print 100*t/hz/s}')" \
        "$(rss_kb "$UKEYD_PID")" "$(hwm_kb "$UKEYD_PID")"
}
idle_run 0 >"$T/idle"
idle_run 10 >>"$T/idle"
daemon_stop 2

echo
echo "ukeyd detection latency, pcscd notification -> ukey watch subscriber (ms), $CYCLES cycles:"
echo "$RESULT_LAT"
echo
echo "idle ukeyd (pcscd running, no card, one SoftHSM2 slot), $(nproc) CPUs:"
cat "$T/idle"
