#!/usr/bin/env bash
# tests/pcsc/doctor.sh: `ukey doctor` against a real pcscd with the vpcd
# reader and OpenSC as the backend:
#   - a card whose ATR no backend knows (the vcard: 3B 80 80 01 01) in a
#     reader -> P1.card-not-recognised, naming the reader and the ATR;
#   - that card held exclusively by another program (probe --hold-exclusive)
#     -> P11.reader-held-exclusively instead, and back once it lets go;
#   - the card out -> P1.no-key;
#   - pcscd stopped -> P1.pcscd-down (8010001D), and nothing else about PC/SC.
# Needs PCSC_BIN_DIR (vcard, probe), UKEY and UKEY_MODULE. Exit 77 = skipped.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=harness.sh
. "$HERE/harness.sh"
TEST_NAME=pcsc-doctor
pcsc_test_messages "doctor"

: "${UKEY:?UKEY must name the ukey binary under test}"
: "${UKEY_MODULE:?UKEY_MODULE must name libukey-pkcs11.so}"
OPENSC=/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so
[[ -r $OPENSC ]] || pcsc__skip "OpenSC is not installed"
command -v jq >/dev/null || fail "jq is not installed: run scripts/setup.sh"

pcsc_start
mkdir -m 0700 "$PCSC_DIR/state"
cat >"$PCSC_DIR/ukey.conf" <<CONF
state_dir = "$PCSC_DIR/state"

[[backend]]
name = "cards"
module = "$OPENSC"
pin_counter = "token"
CONF
chmod 0600 "$PCSC_DIR/ukey.conf"
# OpenSC with one card driver: with all of them it tries each on the unknown
# card, ~15 s per load over vpcd's round trips (the doctor loads it twice).
# What is tested is ukey's reading of "a card, no token", not OpenSC's list.
cat >"$PCSC_DIR/opensc.conf" <<CONF
app default {
    card_drivers = PIV-II;
}
CONF
export UKEY_CONF=$PCSC_DIR/ukey.conf UKEY_MODULE HOME=$PCSC_DIR OPENSC_CONF=$PCSC_DIR/opensc.conf

# This machine's p11-kit registrations stay out of the doctor's sight
# (OpenSC's package registers it, and it is the backend here; cli.doctor_p11
# tests that finding): as root an empty module folder mounted over p11-kit's
# in a mount namespace of ukey's own; for other users (p11-kit reads their
# configuration) a pkcs11.conf that loads only their own modules, none.
# In a chroot the harness checked that mounts stay in their namespace
# (PCSC_NS_MODE chroot), where private propagation cannot be asked for.
AS_NO_P11KIT=()
prop=private
[[ $PCSC_NS_MODE == chroot ]] && prop=unchanged
if [[ $EUID -eq 0 && -d /usr/share/p11-kit/modules ]] && unshare --mount --propagation "$prop" -- true 2>/dev/null; then
    mkdir -m 0755 "$PCSC_DIR/no-p11-kit"
    # shellcheck disable=SC2016
    AS_NO_P11KIT=(unshare --mount --propagation "$prop" -- sh -c 'mount --bind "$0" /usr/share/p11-kit/modules && exec "$@"'
                  "$PCSC_DIR/no-p11-kit")
elif [[ $EUID -ne 0 ]]; then
    mkdir -p "$HOME/.config/pkcs11"
    printf 'user-config: only\n' >"$HOME/.config/pkcs11/pkcs11.conf"
fi

# doctor RC: `ukey --json doctor --offline`, its exit code RC; DOC = its output.
doctor() {
    local rc=0
    DOC=$(timeout 120 "${AS_NO_P11KIT[@]}" "$UKEY" --json doctor --offline 2>"$PCSC_DIR/doctor.err") || rc=$?
    [[ $rc == "$1" ]] || { printf '%s\n' "$DOC" >&2; cat "$PCSC_DIR/doctor.err" >&2; fail "ukey doctor: exit $rc, expected $1"; }
}
ids() { jq -c '[.findings[].id]' <<<"$DOC"; }
# expect_ids JSON: the findings' ids, in order.
expect_ids() { [[ $(ids) == "$1" ]] || { printf '%s\n' "$DOC" >&2; fail "findings $(ids), expected $1"; }; }
what() { jq -r --arg id "$1" '.findings[] | select(.id == $id) | .what' <<<"$DOC"; }
# says ID SENTENCE: the finding ID's "what" is SENTENCE.
says() {
    local w; w=$(what "$1")
    [[ $w == "$2" ]] || fail "$1 says: $w"
}

step "a card no backend knows, in the vpcd reader"
R0=$(pcsc_reader_name 0)
card_insert 0
pcsc_wait_card 0 present
doctor 18
expect_ids '["P1.card-not-recognised"]'
says P1.card-not-recognised \
    "a card is in the reader '$R0' (ATR 3B 80 80 01 01) but no backend recognises it, so no application can use it"

step "the card held exclusively by another program: P11 names the reader"
"$PCSC_BIN_DIR/probe" --hold-exclusive "$R0" 120 >"$PCSC_DIR/hold.out" 2>&1 &
HOLD=$!
pcsc_wait_until 10 grep -qx held "$PCSC_DIR/hold.out" || { cat "$PCSC_DIR/hold.out" >&2; fail "probe did not hold the card"; }
doctor 18
expect_ids '["P11.reader-held-exclusively"]'
says P11.reader-held-exclusively \
    "another program holds the card in the reader '$R0' for itself alone (error 8010000B, SCARD_E_SHARING_VIOLATION, for everyone else), so ukey and every other program are shut out of it"
kill "$HOLD"
wait "$HOLD" || fail "probe --hold-exclusive failed"
doctor 18
expect_ids '["P1.card-not-recognised"]'

step "the card out: no Key"
card_remove 0
pcsc_wait_card 0 empty
doctor 17
expect_ids '["P1.no-key"]'

step "pcscd stopped: 8010001D named"
pcsc_stop
doctor 18
expect_ids '["P1.pcscd-down"]'
says P1.pcscd-down \
    "the smart-card service pcscd is not running (error 8010001D, SCARD_E_NO_SERVICE), so no Key in a card reader can be seen"
log "PASS"
