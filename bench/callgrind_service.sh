#!/usr/bin/env bash
# bench/callgrind_service.sh BUILD_DIR [N]: instructions per call in service
# mode (docs/service-mode.md) and through `p11-kit server` in front of
# SoftHSM2 (the anchor), client and server together. Each function is run
# with N calls and with 0 through p11-kit-client.so (bench/calls.cpp), the
# server started under callgrind for that run alone (--trace-children: the
# serving children, ukeyd's scanner) and stopped after it; every process's Ir
# is summed, and (Ir(N) - Ir(0)) / N printed: what starts and stops is the
# same in both and cancels. Runs as nobody when started as root (ukeyd's
# service user is not root). Takes several minutes.
set -euo pipefail
build=$(cd "${1:?usage: bench/callgrind_service.sh BUILD_DIR [N]}" && pwd)
n=${2:-2000}
if [[ $(id -u) == 0 ]]; then
    exec setpriv --reuid=65534 --regid=65534 --clear-groups -- env HOME=/tmp TMPDIR=/tmp bash "$0" "$build" "$n"
fi
softhsm=${UKEY_BENCH_SOFTHSM_MODULE:-/usr/lib/softhsm/libsofthsm2.so}
client=$(pkg-config --variable=p11_module_path p11-kit-1)/p11-kit-client.so
calls=$build/bench/ukey-calls
command -v valgrind >/dev/null || { echo "callgrind_service.sh: valgrind is not installed" >&2; exit 1; }
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
mkdir -m 700 "$dir/tokens" "$dir/state" "$dir/cg"
printf 'directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\n' "$dir" >"$dir/softhsm2.conf"
cat >"$dir/ukey.conf" <<CONF
state_dir = "$dir/state"
[[backend]]
name = "softhsm"
module = "$softhsm"
[daemon]
socket = "$dir/ukeyd.sock"
pcsc = false
rescan_interval = 0
[service]
enabled = true
socket = "$dir/pkcs11"
user = "$(id -u)"
CONF
export SOFTHSM2_CONF=$dir/softhsm2.conf UKEY_CONF=$dir/ukey.conf UKEY_MODULE=$build/p11/libukey-pkcs11.so
"$calls" setup "$softhsm"

# total KIND FUNCTION COUNT: Ir of server and client for one run
total() {
    local kind=$1 fn=$2 count=$3 socket pid i
    rm -f "$dir"/cg/*
    if [[ $kind == service ]]; then
        socket=$dir/pkcs11
        valgrind --tool=callgrind --trace-children=yes --callgrind-out-file="$dir/cg/srv.%p" \
            "$build/tools/ukeyd/ukeyd" --log-level error 2>"$dir/srv.log" &
    else
        socket=$dir/p11kit.sock
        valgrind --tool=callgrind --trace-children=yes --callgrind-out-file="$dir/cg/srv.%p" \
            p11-kit server -f --provider "$softhsm" -n "$socket" "pkcs11:token=calls" >/dev/null 2>"$dir/srv.log" &
    fi
    pid=$!
    for ((i = 0; i < 600; i++)); do [[ -S $socket ]] && break; sleep 0.1; done
    [[ -S $socket ]] || { cat "$dir/srv.log" >&2; exit 1; }
    P11_KIT_SERVER_ADDRESS=unix:path=$socket valgrind --tool=callgrind --callgrind-out-file="$dir/cg/cli.out" \
        "$calls" run "$client" "$fn" "$count" >/dev/null 2>"$dir/cli.log" || { cat "$dir/cli.log" >&2; exit 1; }
    sleep 1 # the serving child's end, and its callgrind file
    kill -TERM "$pid"
    wait "$pid" 2>/dev/null || true
    rm -f "$socket"
    cat "$dir"/cg/* | awk '/^summary:/ {s += $2} END {print s}'
}
per_call() { echo $((($(total "$1" "$2" "$n") - $(total "$1" "$2" 0)) / n)); }

printf '%-20s %16s %16s\n' function "ukey service" "p11-kit server"
for fn in GetSessionInfo GetAttributeValue Digest Sign; do
    k=$n
    [[ $fn == Sign ]] && n=$((k / 20 > 0 ? k / 20 : 1))
    printf '%-20s %16d %16d\n' "$fn" "$(per_call service "$fn")" "$(per_call p11kit "$fn")"
    n=$k
done
