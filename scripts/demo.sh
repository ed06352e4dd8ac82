#!/usr/bin/env bash
# scripts/demo.sh [BUILD_DIR]: a short tour of ukey with a SoftHSM2-backed Key.
#
# In a private temp dir: configure SoftHSM2 and ukey, then with the `ukey` CLI
# initialise the Key, generate a key pair on it, make a certificate request
# signed on the Key, have a throwaway CA issue the certificate and write it
# next to its key. Applications then use the Key through libukey-pkcs11.so:
# pkcs11-tool lists it, OpenSSL (libp11 engine) signs with it. Finally the PIN
# policy: six wrong PINs lock the Key, `ukey doctor` says so and how to
# unlock it, the SO PIN unlocks it. Last, a certificate enrolled and renewed
# over SCEP against a local scepserver, a renewal cut off midway that
# `ukey doctor` explains and `--fix` finishes, and ukeyd telling a
# subscriber about a second Key coming and going.
# Everything is removed at the end. PINs go through file descriptors, never
# on a command line.
#
# BUILD_DIR defaults to build/ at the repository root.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=$(cd "${1:-$ROOT/build}" 2>/dev/null && pwd || echo "${1:-$ROOT/build}")
MODULE=${UKEY_MODULE:-$BUILD/p11/libukey-pkcs11.so}
UKEY=$BUILD/tools/ukey/ukey
SOFTHSM=/usr/lib/softhsm/libsofthsm2.so
ENGINE=/usr/lib/x86_64-linux-gnu/engines-3/pkcs11.so
LABEL="ukey demo"
# Throwaway PINs of a throwaway Key.
SO_PIN=so-secret-8 PIN=user-pin-1 NEW_PIN=fresh-pin-2 WRONG=not-my-pin

B= R=
if [[ -t 1 ]]; then B=$'\033[1m' R=$'\033[0m'; fi
n=0
step() { n=$((n + 1)); printf '\n%s[%d] %s%s\n' "$B" "$n" "$*" "$R"; }
die() { printf '\ndemo: FAILED: %s\n' "$*" >&2; exit 1; }
show() { printf '$'; printf ' %q' "$@"; printf '\n'; }
uk() { show ukey "$@"; "$UKEY" "$@"; }

[[ -f $MODULE ]] || die "module $MODULE not found (build first: bash scripts/run.sh demo)"
[[ -x $UKEY ]] || die "ukey not found at $UKEY (build first: bash scripts/run.sh demo)"
[[ -f $SOFTHSM ]] || die "SoftHSM2 not installed ($SOFTHSM): run scripts/setup.sh"
[[ -f $ENGINE ]] || die "the libp11 engine is not installed ($ENGINE): run scripts/setup.sh"
for c in pkcs11-tool openssl; do
    command -v "$c" >/dev/null || die "$c not installed: run scripts/setup.sh"
done

umask 077
T=$(mktemp -d "${TMPDIR:-/tmp}/ukey-demo.XXXXXX")
trap 'rm -rf -- "$T"' EXIT
trap 'exit 130' INT TERM

step "A SoftHSM2-backed Key in $T, and ukey's config"
mkdir -m 0700 "$T/tokens" "$T/state"
cat >"$T/softhsm2.conf" <<EOF
directories.tokendir = $T/tokens
objectstore.backend = file
log.level = ERROR
EOF
cat >"$T/ukey.conf" <<EOF
state_dir = "$T/state"

[[backend]]
name = "softhsm"
module = "$SOFTHSM"
pin_counter = "ukey"
EOF
export SOFTHSM2_CONF=$T/softhsm2.conf UKEY_CONF=$T/ukey.conf UKEY_MODULE=$MODULE
sed 's/^/    /' "$UKEY_CONF"
uk list

step "Initialise the Key (the PINs come on descriptors 3 and 4)"
uk init --label "$LABEL" --so-pin-fd 3 --pin-fd 4 3<<<"$SO_PIN" 4<<<"$PIN" || die "init failed"

step "Generate an EC P-256 key pair on the Key"
uk key generate "$LABEL" --type ec-p256 --label demo-key --pin-fd 3 3<<<"$PIN" || die "key generation failed"
KEY_ID=$("$UKEY" --json key list "$LABEL" --pin-fd 3 3<<<"$PIN" | sed -n 's/.*"id": "\([0-9a-f]*\)".*/\1/p' | head -n1)
[[ -n $KEY_ID ]] || die "no key id"
echo "key id: $KEY_ID"

step "A certificate request, signed on the Key"
uk csr "$LABEL" --key "$KEY_ID" --subject "/CN=Demo User/O=ukey demo" --ext-key-usage clientAuth \
    --out "$T/req.pem" --pin-fd 3 3<<<"$PIN" || die "csr failed"
openssl req -in "$T/req.pem" -noout -verify -subject 2>&1 | sed 's/^/    /'

step "A throwaway CA issues the certificate; ukey writes it next to its key"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
    -subj "/CN=ukey demo CA" -keyout "$T/ca.key" -out "$T/ca.pem" 2>/dev/null || die "CA failed"
printf 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=clientAuth\n' >"$T/ext.cnf"
openssl x509 -req -in "$T/req.pem" -CA "$T/ca.pem" -CAkey "$T/ca.key" -CAcreateserial -days 10 \
    -extfile "$T/ext.cnf" -out "$T/cert.pem" 2>/dev/null || die "issuing failed"
uk cert write "$LABEL" --file "$T/cert.pem" --pin-fd 3 3<<<"$PIN" || die "cert write failed"
uk cert list "$LABEL"

step "An application sees the Key through libukey-pkcs11.so (pkcs11-tool)"
show pkcs11-tool --module "$MODULE" --list-token-slots
out=$(pkcs11-tool --module "$MODULE" --list-token-slots) || die "pkcs11-tool cannot use the module"
printf '%s\n' "$out" | sed -n '1,12p'
grep -qE "token label +: $LABEL\$" <<<"$out" || die "token \"$LABEL\" not listed"

step "OpenSSL (libp11 engine) signs on the Key; the signature verifies with the certificate"
cat >"$T/openssl.cnf" <<EOF
openssl_conf = conf
[conf]
engines = engines
[engines]
pkcs11 = p11
[p11]
engine_id = pkcs11
dynamic_path = $ENGINE
MODULE_PATH = $MODULE
PIN = $PIN
init = 0
EOF
printf 'Hello from ukey, %s\n' "$(date -u +%FT%TZ)" >"$T/data.txt"
KEY_URI="pkcs11:token=ukey%20demo;id=%$(sed 's/../&%/g; s/%$//' <<<"$KEY_ID");type=private"
show openssl dgst -sha256 -engine pkcs11 -keyform engine -sign "$KEY_URI" -out data.sig data.txt
OPENSSL_CONF=$T/openssl.cnf openssl dgst -sha256 -engine pkcs11 -keyform engine -sign "$KEY_URI" \
    -out "$T/data.sig" "$T/data.txt" 2>/dev/null || die "signing through the engine failed"
openssl x509 -in "$T/cert.pem" -pubkey -noout >"$T/pub.pem"
out=$(openssl dgst -sha256 -verify "$T/pub.pem" -signature "$T/data.sig" "$T/data.txt" 2>&1) || true
echo "    $out"
[[ $out == "Verified OK" ]] || die "signature did not verify"

step "Six wrong PINs lock the Key, as a real USB Key would"
for i in 1 2 3 4 5 6; do
    show ukey pin verify "$LABEL" --pin-fd 3
    "$UKEY" pin verify "$LABEL" --pin-fd 3 3<<<"$WRONG" && die "a wrong PIN was accepted"
done
echo "...and now even the right PIN is refused:"
show ukey pin verify "$LABEL" --pin-fd 3
"$UKEY" pin verify "$LABEL" --pin-fd 3 3<<<"$PIN" && die "a locked Key accepted its PIN"
uk list
echo "ukey doctor says what is wrong and what to do:"
uk doctor "$LABEL" --offline && die "ukey doctor found nothing wrong with a locked Key"

step "The SO PIN unlocks the Key with a new user PIN"
uk pin unlock "$LABEL" --so-pin-fd 3 --new-pin-fd 4 3<<<"$SO_PIN" 4<<<"$NEW_PIN" || die "unlock failed"
uk pin verify "$LABEL" --pin-fd 3 3<<<"$NEW_PIN" || die "the new PIN does not work"
uk list

# The SCEP part runs in a private network namespace: scepserver listens on
# every interface, so it gets one whose only interface is its own loopback.
scep_demo() {
    set -euo pipefail
    ip link set lo up
    cd "$T"
    scepserver ca -init -depot depot -keySize 2048 -organization "ukey demo SCEP CA" >/dev/null 2>&1
    local port=18443 challenge=demo-challenge-$RANDOM fp
    printf '%s\n' "$challenge" >"$T/challenge"
    scepserver -depot depot -port "$port" -challenge "$challenge" -allowrenew 0 >"$T/scep.log" 2>&1 &
    SCEP_PID=$!
    trap 'kill $SCEP_PID 2>/dev/null || true' EXIT
    for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
    fp=$(openssl x509 -in depot/ca.pem -noout -fingerprint -sha256 | cut -d= -f2)
    echo "scepserver on 127.0.0.1:$port (private network namespace), CA fingerprint $fp"
    uk enroll "$LABEL" --ca "http://127.0.0.1:$port/scep" --ca-fingerprint "$fp" \
        --subject "/CN=Demo SCEP/O=ukey demo" --label "SCEP demo" \
        --challenge-file "$T/challenge" --pin-fd 3 3<<<"$NEW_PIN"
    local id
    id=$("$UKEY" --json cert list "$LABEL" | jq -r '.certificates[] | select(.label == "SCEP demo") | .id')
    echo "Renewing it: a new key pair on the Key, the request signed with the old key (RenewalReq)"
    uk renew "$LABEL" --cert "$id" --ca "http://127.0.0.1:$port/scep" --ca-fingerprint "$fp" \
        --challenge-file "$T/challenge" --pin-fd 3 3<<<"$NEW_PIN"
    uk cert list "$LABEL"

    echo "A renewal cut off after the request was sent (as if the Key were pulled out: the test switch"
    echo "UKEY_TEST_CRASH_AFTER of docs/renewal.md); ukey doctor explains it, and --fix finishes it"
    id=$("$UKEY" --json cert list "$LABEL" | jq -r '.certificates[] | select(.label == "SCEP demo") | .id')
    show env UKEY_TEST_CRASH_AFTER=request_sent ukey renew "$LABEL" --cert "$id" ...
    UKEY_TEST_CRASH_AFTER=request_sent "$UKEY" renew "$LABEL" --cert "$id" --ca "http://127.0.0.1:$port/scep" \
        --ca-fingerprint "$fp" --challenge-file "$T/challenge" --pin-fd 3 3<<<"$NEW_PIN" && return 1
    uk doctor "$LABEL" --offline && return 1
    printf '%s\n' "$NEW_PIN" >"$T/pin"
    # Left: warnings only (exit 17): an expiring test certificate, a test CA.
    local rc=0
    uk doctor "$LABEL" --offline --fix --yes --pin-file "$T/pin" || rc=$?
    ((rc == 0 || rc == 17))
}

step "Enrol and renew over SCEP against a local scepserver (docs/renewal.md)"
ns=()
if unshare --net -- true 2>/dev/null; then
    ns=(unshare --net --)
elif unshare --user --map-root-user --net -- true 2>/dev/null; then
    ns=(unshare --user --map-root-user --net --)
fi
if ! command -v scepserver >/dev/null || ! command -v jq >/dev/null; then
    echo "    (skipped: scepserver or jq not installed; scripts/setup.sh installs them)"
elif ((${#ns[@]} == 0)); then
    echo "    (skipped: no private network namespace (unshare --net) for scepserver)"
else
    export T UKEY LABEL NEW_PIN MODULE UKEY_MODULE UKEY_CONF SOFTHSM2_CONF
    "${ns[@]}" bash -c "$(declare -f show uk scep_demo); scep_demo" || die "SCEP enrolment or renewal failed"
fi

step "ukeyd watches the Keys: a subscriber sees a second Key arrive and go (docs/ukeyd.md)"
cat >>"$UKEY_CONF" <<EOF

[daemon]
socket = "$T/ukeyd.sock"
rescan_interval = 1
EOF
sed -n '/^\[daemon\]/,$p' "$UKEY_CONF" | sed 's/^/    /'
UKEYD=$BUILD/tools/ukeyd/ukeyd
[[ -x $UKEYD ]] || die "ukeyd not found at $UKEYD"
show ukeyd
"$UKEYD" >"$T/ukeyd.log" 2>&1 &
UKEYD_PID=$!
trap 'kill $UKEYD_PID 2>/dev/null || true; rm -rf -- "$T"' EXIT
# Until its first scan has reported the Key we have.
for _ in $(seq 100); do
    [[ $("$UKEY" --json status 2>/dev/null | jq -r '.status.keys | length') == 1 ]] && break
    sleep 0.1
done
uk status || die "ukeyd does not answer"
show ukey watch --events key-inserted,key-removed --count 2 --timeout 20
"$UKEY" watch --events key-inserted,key-removed --count 2 --timeout 20 >"$T/watch.out" 2>&1 &
WATCH_PID=$!
sleep 0.3
echo "...another process initialises a second Key on the free slot, then SoftHSM2 deletes it:"
uk init --label "second Key" --so-pin-fd 3 --pin-fd 4 3<<<"$SO_PIN" 4<<<"$PIN" >/dev/null || die "init of the second Key failed"
sleep 2
show softhsm2-util --delete-token --token "second Key"
softhsm2-util --delete-token --token "second Key" >/dev/null 2>&1 || die "softhsm2-util --delete-token failed"
wait "$WATCH_PID" || die "ukey watch did not see both events"
sed 's/^/    /' "$T/watch.out"
kill -TERM "$UKEYD_PID"
wait "$UKEYD_PID" || die "ukeyd did not stop cleanly"
echo "ukeyd's log:"
sed 's/^/    /' "$T/ukeyd.log"

printf '\n%sDemo OK%s: the private key never left the Key; removing %s\n' "$B" "$R" "$T"
