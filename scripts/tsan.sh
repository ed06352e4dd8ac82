#!/usr/bin/env bash
# scripts/tsan.sh [CTEST_ARGS...]
# Builds build-tsan/ with ThreadSanitizer (-DUKEY_SANITIZE=thread) and runs
# the tests whose subject is threads inside ukey's own code: the unit tests
# (ukeyd's server, expiry watch, hooks; locks, handles), the module tests
# through the C ABI (threads signing while others open and close sessions,
# fork, slot events) and the PIN policy tests (races of threads and
# processes on one Key), plus the daemon suites, whose ukeyd runs its
# socket thread beside the main loop. Any report fails the test
# (scripts/sanitizers.sh); third-party suppressions are in tests/tsan.supp.
# Extra arguments go to ctest (e.g. -R module.threads). Run before each
# release; the time it takes is why .ci/run does not (docs/testing.md).
# UKEY_TSAN_BUILD_DIR overrides build-tsan/.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 1
# shellcheck source=sanitizers.sh
source scripts/sanitizers.sh
DIR=${UKEY_TSAN_BUILD_DIR:-build-tsan}

cmake -S . -B "$DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DUKEY_SANITIZE=thread -DUKEY_WERROR=ON \
    >/dev/null || { echo "tsan.sh: configure failed" >&2; exit 1; }
cmake --build "$DIR" || { echo "tsan.sh: build failed" >&2; exit 1; }
sanitizer_env "$DIR"
rm -f "$TSAN_REPORTS"/report.*
# Client tools that are not built here (pkcs11-tool, libp11, NSS) would
# load the instrumented module without the TSan runtime: those suites
# (labels cli, clients) stay in the other trees.
args=("$@")
((${#args[@]})) || args=(-L '^(unit|module|pin|daemon)$' -LE '^(cli|clients|not_sanitized)$')
ctest --test-dir "$DIR" --output-on-failure -j"${UKEY_CTEST_JOBS:-2}" "${args[@]}"
rc=$?
# Every process's reports, also those of daemons whose stderr the suites
# keep in their own logs.
shopt -s nullglob
reports=("$TSAN_REPORTS"/report.*)
if ((${#reports[@]})); then
    for r in "${reports[@]}"; do
        echo "==> $r"
        cat "$r"
    done
    echo "tsan.sh: ${#reports[@]} process(es) reported (above; also in $TSAN_REPORTS)" >&2
    exit 1
fi
((rc == 0)) && echo "tsan.sh: no report"
exit "$rc"
