#!/usr/bin/env bash
# bench/service_bench.sh: service mode against its anchor (issue 12): the same
# ukey-bench measurements through ukeyd's service (p11-kit-client.so ->
# ukeyd -> libukey-pkcs11.so -> SoftHSM2) and through `p11-kit server` in
# front of SoftHSM2 (p11-kit-client.so -> p11-kit server -> SoftHSM2), each
# against SoftHSM2 loaded directly in the same run, alternated PAIRS times
# (service, anchor, anchor, service, ...) so that machine noise falls on both.
#
#   bench/service_bench.sh [--pairs N] [--build DIR] [ukey-bench options...]
#
# Runs as nobody (ukeyd's service user must not be root). Prints each run's
# table, then the medians over the runs: sign ratios (1 and 2 threads; the
# target is >= 0.95), the time a cheap call adds over direct (the target:
# no more than p11-kit server adds), C_Login p50 (target <= 2 ms). Instruction
# counts: bench/callgrind.sh. Exit 0 whatever the numbers.
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
PAIRS=2
BUILD=$SRC/build
while (($#)); do
    case $1 in
    --pairs) PAIRS=$2; shift 2 ;;
    --build) BUILD=$2; shift 2 ;;
    -h | --help) sed -n '2,16p' "$0"; exit 0 ;;
    *) break ;;
    esac
done
BENCH=$BUILD/bench/ukey-bench
[[ -x $BENCH ]] || { echo "service_bench: $BENCH not built (cmake --build $BUILD --target ukey-bench)" >&2; exit 2; }
command -v jq >/dev/null || { echo "service_bench: needs jq" >&2; exit 2; }
OUT=$(mktemp -d)
chmod 0777 "$OUT"
trap 'rm -rf "$OUT"' EXIT
AS=()
[[ $(id -u) == 0 ]] && AS=(setpriv --reuid=65534 --regid=65534 --clear-groups --)
run() { # KIND N
    "${AS[@]}" env HOME=/tmp TMPDIR=/tmp "$BENCH" --serve "$1" --json "${@:3}" >"$OUT/$1.$2.json"
}
for ((i = 1; i <= PAIRS; i++)); do
    if ((i % 2)); then run service "$i" "$@"; run p11kit "$i" "$@"; else run p11kit "$i" "$@"; run service "$i" "$@"; fi
done
# median over the runs of a result's field
med() { jq -s "[.[] | .results[] | select(.name == \"$2\") | .$3] | sort | .[length/2|floor]" "$OUT"/"$1".*.json; }
printf '\n%-44s %14s %14s\n' "median over $PAIRS runs each" "ukey service" "p11-kit server"
for m in sign_rsa2048_sha256_1thread sign_rsa2048_sha256_2threads; do
    printf '%-44s %14s %14s\n' "$m ratio (target >= 0.95)" "$(med service $m ratio)" "$(med p11kit $m ratio)"
done
for m in C_GetSessionInfo C_GetAttributeValue_modulus_bits_token_object digest_sha256_64B; do
    printf '%-44s %14s %14s\n' "$m added ns" "$(med service $m added_ns)" "$(med p11kit $m added_ns)"
done
printf '%-44s %14s %14s\n' "C_Login p50 ns (target <= 2 ms)" "$(med service C_Login_p50 ukey)" "$(med p11kit C_Login_p50 ukey)"
