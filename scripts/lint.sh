#!/usr/bin/env bash
# scripts/lint.sh [BASE]: clang-format and clang-tidy (14) on the C/C++ files
# changed since BASE (default: main, or HEAD~1 when there is no main), never
# on the whole tree: the tree is not reformatted, new code follows .clang-format.
#   format  only the changed lines (git clang-format --diff): a diff is a finding
#   tidy    the changed .c/.cpp files with .clang-tidy's checks, through the
#           compile commands of $UKEY_BUILD_DIR (default build/; configured if
#           missing)
# Exits 1 on any finding, 0 when clean or nothing changed; prints how long
# it took. UKEY_LINT_TIDY=0 skips clang-tidy.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 1
BUILD_DIR=${UKEY_BUILD_DIR:-build}
t0=$(date +%s)

base=${1:-}
if [[ -z $base ]]; then
    if git rev-parse -q --verify main >/dev/null; then base=main; else base=HEAD~1; fi
fi
merge_base=$(git merge-base "$base" HEAD 2>/dev/null) || { echo "lint: unknown base '$base'" >&2; exit 2; }

# Changed (added, copied, modified, renamed) files, committed since the merge
# base or not yet committed.
mapfile -t files < <({
    git diff --name-only --diff-filter=ACMR "$merge_base" -- '*.c' '*.cpp' '*.h' '*.hpp'
    git ls-files --others --exclude-standard -- '*.c' '*.cpp' '*.h' '*.hpp'
} | sort -u)
if ((${#files[@]} == 0)); then
    echo "lint: no C/C++ file changed since $base"
    exit 0
fi

findings=0
fmt=$(git clang-format-14 --binary clang-format-14 --diff "$merge_base" -- "${files[@]}" 2>&1)
if [[ -n $fmt && $fmt != *"no modified files to format"* && $fmt != *"did not modify any files"* ]]; then
    printf '%s\n' "$fmt"
    echo "lint: clang-format would change the lines above (git clang-format-14 $merge_base to apply)"
    findings=1
fi

if [[ ${UKEY_LINT_TIDY:-1} != 0 ]]; then
    if [[ ! -f $BUILD_DIR/compile_commands.json ]]; then
        cmake -S . -B "$BUILD_DIR" -G Ninja >/dev/null || { echo "lint: cannot configure $BUILD_DIR" >&2; exit 2; }
    fi
    sources=()
    for f in "${files[@]}"; do [[ $f == *.c || $f == *.cpp ]] && [[ -f $f ]] && sources+=("$f"); done
    if ((${#sources[@]} > 0)); then
        if ! clang-tidy-14 -p "$BUILD_DIR" --quiet "${sources[@]}" 2>/dev/null | grep -E -A3 '(warning|error):'; then
            :
        else
            echo "lint: clang-tidy findings above"
            findings=1
        fi
    fi
fi

echo "lint: ${#files[@]} file(s) since $base, $(($(date +%s) - t0))s"
exit "$findings"
