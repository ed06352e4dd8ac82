#!/usr/bin/env bash
# bench/callgrind.sh BUILD_DIR [N]: instructions per call, SoftHSM2 direct vs
# through ukey, counted by callgrind: each function is run with N calls and
# with 0, and (Ir(N) - Ir(0)) / N is printed. Same token, same process shape.
set -euo pipefail
build=${1:?usage: bench/callgrind.sh BUILD_DIR [N]}
n=${2:-2000}
softhsm=${UKEY_BENCH_SOFTHSM_MODULE:-/usr/lib/softhsm/libsofthsm2.so}
ukey=${UKEY_CALLS_MODULE:-$build/p11/libukey-pkcs11.so}
calls=$build/bench/ukey-calls
command -v valgrind >/dev/null || { echo "callgrind.sh: valgrind is not installed" >&2; exit 1; }
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
mkdir -m 700 "$dir/tokens" "$dir/state"
printf 'directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\n' "$dir" > "$dir/softhsm2.conf"
printf 'state_dir = "%s/state"\n[[backend]]\nname = "softhsm"\nmodule = "%s"\n' "$dir" "$softhsm" > "$dir/ukey.conf"
export SOFTHSM2_CONF=$dir/softhsm2.conf UKEY_CONF=$dir/ukey.conf
"$calls" setup "$softhsm"

# Ir of one run
ir() {
    valgrind --tool=callgrind --callgrind-out-file="$dir/cg.out" "$calls" run "$1" "$2" "$3" >/dev/null 2>"$dir/vg.log" ||
        { cat "$dir/vg.log" >&2; exit 1; }
    awk '/^summary:/ {print $2}' "$dir/cg.out"
}
per_call() { echo $(( ($(ir "$1" "$2" "$n") - $(ir "$1" "$2" 0)) / n )); }

printf '%-20s %14s %14s %10s\n' function softhsm ukey added
for fn in GetSessionInfo GetAttributeValue Digest Sign Login; {
    k=$n
    [[ $fn == Sign || $fn == Login ]] && n=$(( k / 20 > 0 ? k / 20 : 1 ))
    a=$(per_call "$softhsm" "$fn"); b=$(per_call "$ukey" "$fn")
    printf '%-20s %14d %14d %10d\n' "$fn" "$a" "$b" "$((b - a))"
    n=$k
}
