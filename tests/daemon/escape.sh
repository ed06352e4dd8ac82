#!/usr/bin/env bash
# daemon.escape: hostile Keys in front of ukeyd. A card (the test backend
# fakecard) whose label, manufacturer, model, serial and reader hold ESC
# sequences, OSC 52, BEL, DEL, a newline that would forge a line, C1, a bidi
# override and invalid UTF-8 (GBK, \xff\xfe), and a SoftHSM2 token with such a
# label holding a certificate (expiring: a cert-expiring event) whose
# subject does the same. ukeyd's log, `ukey status` (text and --json),
# `ukey watch` (text and --json) and the hooks' UKEY_* variables get no byte
# below 0x20 but the line ends, no 0x7f, no C1, no bidi override, valid UTF-8
# only; the variables hold the documented escapes (docs/ukeyd.md, "Hooks")
# and UKEY_EVENT_JSON the exact values where they are UTF-8.
. "$(dirname "$0")/lib.sh"
: "${FAKECARD_MODULE:?FAKECARD_MODULE must name the fake card test module}"
need openssl pkcs11-tool iconv

DAEMON_RESCAN=0.5
daemon_setup "
[[backend]]
name = \"card\"
module = \"$FAKECARD_MODULE\"
pin_counter = \"token\"

[expiry]
thresholds = [7]"
BOUND=$(scan_bound 15) # generous: ASan, a busy machine

OSC52=$'\e]52;c;ZXZpbA==\a'
CLEAR=$'\e[2J'
FORGE=$'\nukey: fake line'
C1=$'\xc2\x9b'
RLO=$'\xe2\x80\xae'
GBK=$'\xd6\xd0\xce\xc4'
BAD=$'\xff\xfe'
DEL=$'\x7f'
ZH=$'\xe4\xb8\xad\xe6\x96\x87'
FFFD=$'\xef\xbf\xbd' # ukeyd's scanner hands Keys over as JSON: invalid UTF-8 arrives as U+FFFD

export FAKECARD_STATE=$T/card.state
export FAKECARD_TOKEN_LABEL="$OSC52$FORGE"
export FAKECARD_TOKEN_MANUFACTURER="$CLEAR$C1$DEL$GBK$RLO"
export FAKECARD_TOKEN_MODEL="$ZH"$'\r\t\x01'
export FAKECARD_TOKEN_SERIAL="$BAD$CLEAR"
export FAKECARD_READER=$'reader\e]0;title\a'"$FORGE"
TOKEN_LABEL="$CLEAR$GBK$C1$FORGE"

# clean FILE WHAT: the bytes of FILE are what a terminal or a log may get.
clean() { assert_clean_bytes "$1" "$2" "got through"; }

# A certificate with a hostile subject (UTF-8: Chinese, ESC, BEL, a newline,
# C1, DEL, RLO) that expires in 6 days, on a token with a hostile label, made
# in a staging folder and moved in whole.
make_ca
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/leaf.key" -utf8 \
    -subj "/O=$ZH/CN=$OSC52$FORGE$C1$CLEAR$DEL$RLO" -out "$T/leaf.csr" 2>/dev/null || fail "openssl req failed"
openssl x509 -req -in "$T/leaf.csr" -CA "$T/ca/ca.pem" -CAkey "$T/ca/ca.key" -days 6 -outform DER \
    -out "$T/leaf.der" 2>/dev/null || fail "openssl cannot issue the certificate"
mkdir -m 0700 "$T/staging"
sed "s|$T/tokens|$T/staging|" "$T/softhsm2.conf" >"$T/staging.conf"
out=$(SOFTHSM2_CONF=$T/staging.conf softhsm2-util --init-token --free --label "$TOKEN_LABEL" \
    --so-pin "$TEST_SO_PIN" --pin "$TEST_USER_PIN" 2>&1) || { show softhsm2-util "$out"; fail "init-token"; }
out=$(SOFTHSM2_CONF=$T/staging.conf timeout 30 pkcs11-tool --module "$SOFTHSM_MODULE" --token-label "$TOKEN_LABEL" \
    --login --pin "$TEST_USER_PIN" --write-object "$T/leaf.der" --type cert --id 01 --label "$OSC52$GBK" 2>&1) \
    || { show pkcs11-tool "$out"; fail "writing the certificate"; }

daemon_start
watch_start all
"$UKEY" watch --socket "$SOCK" >"$T/watch.text.out" 2>"$T/watch.text.err" &
WATCH_PID[text]=$!
wait_for "the text watcher" "$DAEMON_WAIT" subscribers_at_least 2

step "the hostile Key appears: key-inserted, cert-expiring; the card (there from the start) locks: pin-locked"
dir=$(ls -t "$T/staging" | head -n 1)
mv "$T/staging/$dir" "$T/tokens/$dir"
wait_events all '.event == "key-inserted" and .key.backend == "softhsm"' 1 "$BOUND"
wait_events all '.event == "cert-expiring"' 1 "$BOUND"
printf 'fakecard 1 user_left=0 so_left=3 user_pin=card-user-2468 so_pin=card-so-13579\n' >"$FAKECARD_STATE"
wait_events all '.event == "pin-locked"' 1 "$BOUND"
wait_hooks key-inserted 2 "" "$BOUND"
wait_hooks cert-expiring 1 "" "$BOUND"
wait_hooks pin-locked 1 "" "$BOUND"
wait_for "the text watcher's pin-locked line" "$DAEMON_WAIT" grep -q pin-locked "$T/watch.text.out"

step "ukey status, text and --json"
uk status --socket "$SOCK"
expect_rc 0 "ukey status"
cp "$T/uk.out" "$T/status.out"; cp "$T/uk.err" "$T/status.err"
assert_contains "$OUT" "'\\x1b[2J$FFFD$FFFD$FFFD$FFFD\\u009b\\x0aukey: fake line'/" "status: the token's label"
assert_contains "$OUT" "'\\x1b]52;c;ZXZpbA==\\x07\\x0aukey: fake line'/$FFFD$FFFD\\x1b[2J" "status: the card"
assert_contains "$OUT" "O=$ZH" "status: Chinese in the subject stays Chinese"
uk --json status --socket "$SOCK"
expect_rc 0 "ukey --json status"
json_ok "$OUT" "ukey --json status"
cp "$T/uk.out" "$T/status.json"; cp "$T/uk.err" "$T/status.json.err"
jeq "$OUT" '[.keys[] | select(.backend == "card") | .label]' "$(jq -cn --arg v "$OSC52$FORGE" '[$v]')" \
    "status --json: the card's exact label"

step "stdout, stderr, the log and the watchers are clean"
for f in status.out status.err status.json status.json.err ukeyd.log watch.all.out watch.all.err \
    watch.text.out watch.text.err; do
    soft clean "$T/$f" "$f"
done
# The --json watcher's lines are JSON documents.
while IFS= read -r line; do
    jq -e . >/dev/null <<<"$line" || fail "ukey --json watch printed a line that is not JSON: $line"
done <"$T/watch.all.out"
soft assert_contains "$(cat "$T/ukeyd.log")" "\\x1b]52;c;ZXZpbA==\\x07\\x0aukey: fake line" "ukeyd.log: the card's label"

step "the hooks' variables: escaped, documented form"
for f in "$T"/hooks/*; do soft clean "$f" "hook environment $(basename "$f")"; done
f=$(hook_files key-inserted "UKEY_BACKEND=card" | head -n 1)
[[ -n $f ]] || fail "no key-inserted hook run for the card"
assert_eq "$(hook_env "$f" UKEY_TOKEN_LABEL)" '\x1b]52;c;ZXZpbA==\x07\x0aukey: fake line' "UKEY_TOKEN_LABEL"
assert_eq "$(hook_env "$f" UKEY_TOKEN_SERIAL)" "$FFFD$FFFD"'\x1b[2J' "UKEY_TOKEN_SERIAL"
assert_eq "$(hook_env "$f" UKEY_TOKEN_MANUFACTURER)" '\x1b[2J\u009b\x7f'"$FFFD$FFFD$FFFD$FFFD"'\u202e' \
    "UKEY_TOKEN_MANUFACTURER"
assert_eq "$(hook_env "$f" UKEY_TOKEN_MODEL)" "$ZH"'\x0d\x09\x01' "UKEY_TOKEN_MODEL"
assert_eq "$(hook_env "$f" UKEY_KEY_ID)" 'card/\x1b[2J\u009b\x7f'"$FFFD$FFFD$FFFD$FFFD"'\u202e/'"$ZH"'\x0d\x09\x01/'"$FFFD$FFFD"'\x1b[2J' \
    "UKEY_KEY_ID"
jeq "$(hook_env "$f" UKEY_EVENT_JSON)" '.key.label' "$(jq -cn --arg v "$OSC52$FORGE" '$v')" "UKEY_EVENT_JSON: the exact label"
f=$(hook_files cert-expiring | head -n 1)
assert_eq "$(hook_env "$f" UKEY_CERT_LABEL)" '\x1b]52;c;ZXZpbA==\x07'"$FFFD$FFFD$FFFD$FFFD" "UKEY_CERT_LABEL"
assert_contains "$(hook_env "$f" UKEY_CERT_SUBJECT)" "O=$ZH" "UKEY_CERT_SUBJECT"
assert_contains "$(hook_env "$f" UKEY_CERT_SUBJECT)" '\u009b' "UKEY_CERT_SUBJECT"

watch_stop all
kill -TERM "${WATCH_PID[text]}"; wait "${WATCH_PID[text]}" || true; unset "WATCH_PID[text]"
daemon_stop
check_no_pin_in_logs
finish
