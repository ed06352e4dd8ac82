#!/usr/bin/env bash
# scripts/fuzz.sh [SECONDS] [TARGET...]
# Builds the libFuzzer targets (tests/fuzz/) with clang in build-fuzz/ and runs
# each for SECONDS (default 60) of wall time, one after the other, at the
# lowest CPU priority. Inputs that find new coverage are kept in
# build-fuzz/corpus/<target>/; at the end those that add coverage to the
# committed corpus are merged into tests/fuzz/corpus/<target>/ (review and
# commit them). A crash, leak or sanitizer report leaves its input in
# build-fuzz/artifacts/<target>/ and makes the script exit non-zero.
# Prints, per target, the executions, the CPU seconds the fuzzer used (less
# than SECONDS when the machine is busy: the issue's budgets count CPU),
# coverage (cov: edges, ft: features) and the corpus size.
# UKEY_FUZZ_BUILD_DIR overrides build-fuzz/; UKEY_FUZZ_NICE the priority
# (default 19).
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 1
SECONDS_EACH=${1:-60}
shift || true
DIR=${UKEY_FUZZ_BUILD_DIR:-build-fuzz}
NICE=${UKEY_FUZZ_NICE:-19}
[[ $SECONDS_EACH =~ ^[0-9]+$ ]] || { echo "usage: $0 [SECONDS] [TARGET...]" >&2; exit 2; }

launcher=()
if command -v ccache >/dev/null; then
    launcher=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi
# Warnings stay warnings here: the GCC build is the one held to -Werror.
CC=clang CXX=clang++ nice -n 19 cmake -S . -B "$DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DUKEY_FUZZ=ON \
    -DUKEY_WERROR=OFF "${launcher[@]}" >/dev/null || { echo "fuzz.sh: configure failed" >&2; exit 1; }

targets=("$@")
if ((${#targets[@]} == 0)); then
    for f in tests/fuzz/*.cpp; do
        t=$(basename "$f" .cpp)
        [[ $t == replay_main ]] || targets+=("$t")
    done
fi
nice -n 19 cmake --build "$DIR" --target "${targets[@]/#/fuzz-}" || { echo "fuzz.sh: build failed" >&2; exit 1; }

failed=0
summary=()
for t in "${targets[@]}"; do
    bin=$DIR/tests/fuzz/fuzz-$t
    seeds=tests/fuzz/corpus/$t
    work=$DIR/corpus/$t
    art=$DIR/artifacts/$t
    log=$DIR/fuzz-$t.log
    mkdir -p "$work" "$art" "$seeds"
    echo "==> fuzz-$t for ${SECONDS_EACH}s"
    cpu_file=$DIR/fuzz-$t.cpu
    # bash's time keyword: user and system CPU seconds of the fuzzer.
    { TIMEFORMAT='%U %S'; time nice -n "$NICE" "$bin" -max_total_time="$SECONDS_EACH" -timeout=25 \
        -print_final_stats=1 -artifact_prefix="$art/" "$work" "$seeds" >"$log" 2>&1; } 2>"$cpu_file"
    rc=$?
    cpu=$(awk '{ printf "%d", $1 + $2 }' "$cpu_file" 2>/dev/null)
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)
    last=$(grep -E '^#[0-9]+' "$log" | tail -n1)
    cov=$(sed -nE 's/.* cov: ([0-9]+).*/\1/p' <<<"$last")
    ft=$(sed -nE 's/.* ft: ([0-9]+).*/\1/p' <<<"$last")
    if ((rc != 0)); then
        failed=1
        echo "fuzz.sh: fuzz-$t failed (exit $rc); see $log and $art/" >&2
        grep -E 'ERROR|SUMMARY|Test unit written' "$log" | head -n 5 >&2
    else
        # Keep what adds coverage to the committed corpus: new edges only
        # (-use_counters=0: not every new hit count), so it stays small.
        nice -n 19 "$bin" -merge=1 -use_counters=0 "$seeds" "$work" >>"$log" 2>&1 ||
            echo "fuzz.sh: merge of $t failed" >&2
    fi
    summary+=("$(printf '%-14s %s execs=%-10s cpu=%-5s cov=%-6s ft=%-6s corpus=%s' "$t" \
        "$([[ $rc == 0 ]] && echo ok || echo FAIL)" "${execs:-?}" "${cpu:-?}s" "${cov:-?}" "${ft:-?}" \
        "$(find "$seeds" -type f | wc -l)")")
done
echo
echo "==> fuzz summary (${SECONDS_EACH}s each)"
printf '%s\n' "${summary[@]}"
exit $failed
