#!/usr/bin/env bash
# scripts/run.sh demo|test
#   demo  install missing packages, build build/ (Release), run the demo
#   test  install missing packages, build build/ and build-asan/ (ASan+UBSan),
#         run both test suites; exits non-zero if anything fails and ends with
#         the line "N passed, N failed" (both suites together; skipped tests
#         are in neither number and reported on the line before).
# Works from any directory. UKEY_BUILD_DIR / UKEY_ASAN_BUILD_DIR override the
# two build trees (default build/ and build-asan/ at the repository root).
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 1

# Release, as packagers build it: the normal tree shows on every run that a
# Release build is warning-free (-Werror below) and passes the suite.
BUILD_TYPE=${UKEY_BUILD_TYPE:-Release}
BUILD_DIR=${UKEY_BUILD_DIR:-build}
ASAN_DIR=${UKEY_ASAN_BUILD_DIR:-build-asan}
CTEST_JOBS=${UKEY_CTEST_JOBS:-2}

# shellcheck source=sanitizers.sh
source scripts/sanitizers.sh

say() { printf '\n==> %s\n' "$*"; }
took() { printf '==> %s took %ds\n' "$1" "$(($(date +%s) - $2))"; }

# configure_and_build DIR [cmake -D options...]
configure_and_build() {
    local dir=$1; shift
    local t0; t0=$(date +%s)
    # A tree configured with another generator cannot be reused: start over.
    if [[ -f $dir/CMakeCache.txt ]] && ! grep -q '^CMAKE_GENERATOR:INTERNAL=Ninja$' "$dir/CMakeCache.txt"; then
        echo "run.sh: $dir was not configured with Ninja; reconfiguring from scratch"
        rm -rf -- "$dir/CMakeCache.txt" "$dir/CMakeFiles"
    fi
    say "configure $dir ($BUILD_TYPE${*:+ $*})"
    # -Werror: the developers' and CI builds treat warnings as errors (the
    # project's default leaves them warnings, for packagers).
    cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE="$BUILD_TYPE" -DUKEY_WERROR=ON "$@" || return 1
    say "build $dir"
    cmake --build "$dir" || return 1
    took "configure+build $dir" "$t0"
}

setup() {
    local t0; t0=$(date +%s)
    say "setup (scripts/setup.sh)"
    bash scripts/setup.sh || { echo "run.sh: setup failed" >&2; exit 1; }
    took "setup" "$t0"
}

TOTAL_PASSED=0 TOTAL_FAILED=0 TOTAL_SKIPPED=0

# run_ctest DIR [ctest options...]: runs the suite in DIR and adds its counts
# to the totals.
run_ctest() {
    local dir=$1 log rc=0 t0; shift
    t0=$(date +%s)
    log=$(mktemp)
    # ctest starts the tests it knows to be long first, from the times it
    # keeps in the tree; a fresh tree knows none, and a 2-minute test started
    # last would run alone at the end. tests/ctest-costs.txt seeds it with
    # the tests over 2 s (times of an ASan run; refresh it from a tree's
    # Testing/Temporary/CTestCostData.txt when suites change a lot).
    if [[ ! -f $dir/Testing/Temporary/CTestCostData.txt ]]; then
        mkdir -p "$dir/Testing/Temporary" &&
            { cat tests/ctest-costs.txt; echo ---; } >"$dir/Testing/Temporary/CTestCostData.txt"
    fi
    say "ctest --test-dir $dir${*:+ $*}"
    ctest --test-dir "$dir" --output-on-failure -j"$CTEST_JOBS" "$@" 2>&1 | tee "$log"
    rc=${PIPESTATUS[0]}
    local line failed total skipped
    line=$(grep -E '[0-9]+ tests? failed out of [0-9]+' "$log" | tail -n1)
    if [[ $line =~ ([0-9]+)\ tests?\ failed\ out\ of\ ([0-9]+) ]]; then
        failed=${BASH_REMATCH[1]} total=${BASH_REMATCH[2]}
    elif grep -q 'No tests were found' "$log"; then
        failed=0 total=0
        echo "run.sh: warning: no tests in $dir"
    else
        echo "run.sh: cannot read the ctest summary of $dir (rc $rc)" >&2
        failed=1 total=1
    fi
    skipped=$(grep -cE '\(Skipped\)$' "$log" || true)
    # ctest counts skipped tests as "not failed"; we keep them apart.
    TOTAL_FAILED=$((TOTAL_FAILED + failed))
    TOTAL_PASSED=$((TOTAL_PASSED + total - failed - skipped))
    TOTAL_SKIPPED=$((TOTAL_SKIPPED + skipped))
    if [[ $rc -ne 0 && $failed -eq 0 ]]; then
        echo "run.sh: ctest in $dir exited with $rc but reported no failure" >&2
        TOTAL_FAILED=$((TOTAL_FAILED + 1))
    fi
    rm -f "$log"
    took "ctest $dir" "$t0"
}

cmd_demo() {
    setup
    configure_and_build "$BUILD_DIR" || { echo "run.sh: build failed" >&2; exit 1; }
    say "demo (scripts/demo.sh)"
    exec bash scripts/demo.sh "$BUILD_DIR"
}

cmd_test() {
    local t_all asan_log asan_pid asan_ok=1; t_all=$(date +%s)
    setup

    local normal_ok=1
    configure_and_build "$BUILD_DIR" || normal_ok=0

    # The sanitized tree builds while the normal tree's tests run: they wait
    # on daemons, timers and pcscd more than they compute, and at nice 19 the
    # build only takes the CPU they leave (UKEY_OVERLAP=0: one after the
    # other). Its output is shown once the tests are done.
    asan_log=$(mktemp)
    if [[ ${UKEY_OVERLAP:-1} == 1 && $normal_ok == 1 ]]; then
        # setsid: its own process group, so that all of it can be given its
        # priority back below.
        setsid nice -n 19 bash -c "$(declare -f say took configure_and_build); BUILD_TYPE='$BUILD_TYPE'; \
            configure_and_build '$ASAN_DIR' -DUKEY_SANITIZE=ON" >"$asan_log" 2>&1 &
        asan_pid=$!
    fi

    if [[ $normal_ok == 1 ]]; then
        run_ctest "$BUILD_DIR"
    else
        echo "run.sh: build of $BUILD_DIR failed; its tests count as one failure" >&2
        TOTAL_FAILED=$((TOTAL_FAILED + 1))
    fi

    if [[ -n ${asan_pid:-} ]]; then
        local t_wait; t_wait=$(date +%s)
        # Nothing else of ours runs now: at nice 19 on a machine that others
        # keep busy, the rest of the build would get almost no CPU (seen: two
        # busy loops beside .ci/run). Root may raise it back to 0; others
        # cannot, and wait.
        renice -n 0 -g "$asan_pid" >/dev/null 2>&1 || true
        wait "$asan_pid" || asan_ok=0
        cat "$asan_log"
        took "waiting for the overlapped build of $ASAN_DIR" "$t_wait"
    else
        configure_and_build "$ASAN_DIR" -DUKEY_SANITIZE=ON || asan_ok=0
    fi
    rm -f "$asan_log"

    if [[ $asan_ok == 1 ]]; then
        # The sanitizer options (scripts/sanitizers.sh); suites whose
        # subject is third-party code are labelled not_sanitized and run in
        # the normal tree only (tests/CMakeLists.txt says which).
        sanitizer_env "$ASAN_DIR"
        run_ctest "$ASAN_DIR" -LE not_sanitized
    else
        echo "run.sh: build of $ASAN_DIR failed; its tests count as one failure" >&2
        TOTAL_FAILED=$((TOTAL_FAILED + 1))
    fi

    took "run.sh test" "$t_all"
    ((TOTAL_SKIPPED > 0)) && echo "($TOTAL_SKIPPED skipped)"
    echo "$TOTAL_PASSED passed, $TOTAL_FAILED failed"
    ((TOTAL_FAILED == 0))
}

case ${1:-} in
    demo) cmd_demo ;;
    test) cmd_test ;;
    *) echo "usage: $0 demo|test" >&2; exit 2 ;;
esac
