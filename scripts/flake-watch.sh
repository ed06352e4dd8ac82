#!/usr/bin/env bash
# scripts/flake-watch.sh [-n N] [-d BUILD_DIR] [-- CTEST_ARGS...]
#
# Runs the suite of BUILD_DIR (default build/) N times (default 5) and
# reports every test that failed at least once, how often, and where the
# output of each failing run is kept. Extra arguments go to ctest, e.g.
#   bash scripts/flake-watch.sh -n 20 -d build-asan -- -L module
#   bash scripts/flake-watch.sh -n 300 -d build-asan -- -R module.fork_test
# The sanitizer options are those of scripts/run.sh (scripts/sanitizers.sh)
# when BUILD_DIR is a sanitized tree. Exit status: 0 if no test ever failed, 1 otherwise,
# 2 on usage errors or a run in which no test ran.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
N=5 DIR=$ROOT/build
while (($#)); do
    case $1 in
        -n) N=$2; shift 2 ;;
        -d) DIR=$2; shift 2 ;;
        --) shift; break ;;
        *) echo "usage: $0 [-n N] [-d BUILD_DIR] [-- CTEST_ARGS...]" >&2; exit 2 ;;
    esac
done
[[ $N =~ ^[0-9]+$ && $N -ge 1 ]] || { echo "flake-watch: -n must be a positive number" >&2; exit 2; }
[[ -f $DIR/CTestTestfile.cmake ]] || { echo "flake-watch: $DIR is not a configured build tree" >&2; exit 2; }

# shellcheck source=sanitizers.sh
source "$ROOT/scripts/sanitizers.sh"
sanitizer_env "$DIR"

OUT=$(mktemp -d /tmp/flake-watch.XXXXXX)
declare -A failed_count=()
any=0
for ((i = 1; i <= N; i++)); do
    log=$OUT/run-$i.log
    t0=$(date +%s)
    ctest --test-dir "$DIR" --output-on-failure -j"${UKEY_CTEST_JOBS:-2}" "$@" >"$log" 2>&1
    # ctest's summary lists failures as "  NN - name (Failed|Timeout|...)".
    mapfile -t names < <(sed -n '/The following tests FAILED:/,$p' "$log" |
                         sed -nE 's/^[[:space:]]*[0-9]+ - ([^ ]+) \(.*/\1/p')
    for t in "${names[@]}"; do
        failed_count[$t]=$((${failed_count[$t]:-0} + 1))
        any=1
    done
    # How many ran: a filter that matches nothing must not pass for a clean run.
    ran=$(sed -nE 's/.*tests? failed out of ([0-9]+).*/\1/p' "$log" | tail -n 1)
    if [[ -z $ran || $ran == 0 ]]; then
        echo "flake-watch: run $i ran no test (see $log)" >&2
        exit 2
    fi
    printf 'run %d/%d: %d of %d failed (%ds)%s\n' "$i" "$N" "${#names[@]}" "$ran" "$(($(date +%s) - t0))" \
        "${names[*]:+: ${names[*]}}"
    ((${#names[@]})) || rm -f "$log"
done

if ((any == 0)); then
    echo "flake-watch: no test failed in $N runs"
    rmdir "$OUT" 2>/dev/null
    exit 0
fi
echo "flake-watch: tests that failed at least once in $N runs (logs in $OUT):"
for t in "${!failed_count[@]}"; do
    printf '  %-60s %d/%d\n' "$t" "${failed_count[$t]}" "$N"
done | sort
exit 1
