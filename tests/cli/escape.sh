#!/usr/bin/env bash
# A hostile Key and a hostile certificate cannot reach the admin's terminal:
# labels, serials, manufacturer, model, reader, object labels and a
# certificate's subject, SAN and CRL URL holding ESC sequences (clear screen,
# OSC 52 which writes the clipboard), BEL, DEL, newlines that would forge a
# `ukey:` line, C1 controls, bidi overrides, invalid UTF-8 (\xff\xfe) and GBK
# bytes (what Chinese Keys carry) come out escaped from every command, human
# and --json: no byte below 0x20 but the line ends ukey writes, no 0x7f, no
# C1, no bidi override, valid UTF-8 only, on stdout and stderr (log lines
# included). Chinese text stays Chinese. --json documents stay valid (U+FFFD
# for invalid UTF-8) and `ukey --json info nosuchkey` with such Keys present
# is a clean error. The argument of a PIN file option is never echoed.
#
# The hostile token strings come from the test backend fakecard
# (FAKECARD_TOKEN_*, tests/backends/README.md); the SoftHSM2 token gets a
# hostile label through `ukey init`, its objects through pkcs11-tool.
. "$(dirname "$0")/lib.sh"
: "${FAKECARD_MODULE:?FAKECARD_MODULE must name libukey-test-fakecard.so}"
need openssl pkcs11-tool iconv
cli_setup "
[[backend]]
name = \"fakecard\"
module = \"$FAKECARD_MODULE\"
pin_counter = \"token\""
export UKEY_LOG_LEVEL=debug # log lines quote labels too: they must be clean
export FAKECARD_STATE=$T/fakecard.state

new_pins SO U1

# The hostile strings.
OSC52=$'\e]52;c;ZXZpbA==\a'   # writes "evil" to the clipboard
CLEAR=$'\e[2J'                # clears the screen
FORGE=$'\nukey: fake line'    # a line of its own
C1=$'\xc2\x9b'                # CSI as a C1 control (U+009B)
RLO=$'\xe2\x80\xae'           # right-to-left override
GBK=$'\xd6\xd0\xce\xc4'       # 中文 in GBK: invalid UTF-8
BAD=$'\xff\xfe'
ZH=$'\xe4\xb8\xad\xe6\x96\x87' # 中文 in UTF-8: shown as it is
DEL=$'\x7f'

export FAKECARD_TOKEN_LABEL="$OSC52$FORGE"
export FAKECARD_TOKEN_MANUFACTURER="$CLEAR$C1$DEL$GBK$RLO"
export FAKECARD_TOKEN_MODEL="$ZH"$'\r\t\x01'
export FAKECARD_TOKEN_SERIAL="$BAD$CLEAR"
export FAKECARD_READER=$'reader\e]0;title\a'"$FORGE"

# clean FILE WHAT: the bytes of FILE are what a terminal may safely get.
clean() { assert_clean_bytes "$1" "$2" "reached the terminal"; }

# run WHAT ARGS...: uk ARGS, then stdout and stderr must be clean; with
# --json, stdout must be one JSON document (or nothing). Keeps a copy of the
# output in $T/all.out for the checks at the end.
run() {
    local what=$1; shift
    uk "$@"
    ((RC < 128)) || fail "ukey $what died of signal $((RC - 128))"
    soft clean "$T/uk.out" "ukey $what: stdout"
    soft clean "$T/uk.err" "ukey $what: stderr"
    if [[ $1 == --json && -s $T/uk.out ]]; then
        soft json_ok "$OUT" "ukey $what"
    fi
    cat "$T/uk.out" "$T/uk.err" >>"$T/all.out"
}

step "a Key with a hostile label (ukey init), a fakecard with hostile strings"
uk --json init --label "$CLEAR$GBK$C1$FORGE" --so-pin-fd 3 --pin-fd 4 3<<<"$SO" 4<<<"$U1"
expect_rc 0 "ukey init with a hostile label"
json_ok "$OUT" "ukey --json init"
soft clean "$T/uk.out" "ukey --json init: stdout"
SERIAL=$(jr "$OUT" '.key.serial')
[[ $SERIAL =~ ^[0-9a-f]+$ ]] || fail "no serial for the SoftHSM2 Key: '$SERIAL'"

step "objects with hostile labels (pkcs11-tool), a certificate with a hostile subject, SAN and CRL URL"
echo data >"$T/data.bin"
n=0
for label in "$GBK" "$BAD" "$OSC52" "x$FORGE" "$C1$RLO" "$ZH"; do
    n=$((n + 1))
    p11 --token-label "$CLEAR$GBK$C1$FORGE" --login --pin "$U1" --write-object "$T/data.bin" --type data \
        --label "$label" >/dev/null
done
run "key generate" --json key generate "$SERIAL" --type ec-p256 --label "k$CLEAR" --pin-fd 3 3<<<"$U1"
expect_rc 0 "key generate"
jr "$OUT" '.public_key_pem' >"$T/key.pub"
make_ca
# The subject is UTF-8 (-utf8): Chinese, ESC, BEL, a newline, C1, DEL, RLO.
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/throwaway.key" -utf8 \
    -subj "/O=$ZH/CN=$OSC52$FORGE$C1$CLEAR$DEL$RLO" -out "$T/hostile.csr" 2>/dev/null \
    || fail "openssl req with a hostile subject failed"
printf '[h]\nsubjectAltName = DNS:a%s.example,URI:http://x/\a\177,email:%s@x\nkeyUsage = critical,digitalSignature\ncrlDistributionPoints = URI:http://crl/%s\n' \
    "$CLEAR" "$C1" "$OSC52" >"$T/hostile.ext"
openssl x509 -req -in "$T/hostile.csr" -force_pubkey "$T/key.pub" -CA "$T/ca/ca.pem" -CAkey "$T/ca/ca.key" \
    -days 30 -extfile "$T/hostile.ext" -extensions h -out "$T/hostile.pem" 2>/dev/null \
    || fail "openssl cannot issue the hostile certificate"
run "cert write" cert write "$SERIAL" --file "$T/hostile.pem" --pin-fd 3 3<<<"$U1"
expect_rc 0 "cert write of the hostile certificate"
openssl x509 -in "$T/hostile.pem" -outform DER -out "$T/hostile.der"
p11 --token-label "$CLEAR$GBK$C1$FORGE" --login --pin "$U1" --write-object "$T/hostile.der" --type cert \
    --id 77 --label "gbk $GBK" >/dev/null

step "every command, human and --json: stdout and stderr clean"
for j in "" --json; do
    run "$j list" $j list
    expect_rc 0 "ukey $j list"
    run "$j info (SoftHSM2)" $j info "$SERIAL"
    expect_rc 0 "ukey $j info"
    run "$j info (fakecard)" $j info 'pkcs11:model=%E4%B8%AD%E6%96%87%0D%09%01'
    run "$j info nosuchkey" $j info nosuchkey
    expect_rc 3 "ukey $j info nosuchkey"
    run "$j info (ambiguous)" $j info
    expect_rc 4 "ukey $j info with two Keys"
    run "$j cert list" $j cert list "$SERIAL"
    expect_rc 0 "ukey $j cert list"
    run "$j cert show" $j cert show "$SERIAL" --id 77
    expect_rc 0 "ukey $j cert show"
    run "$j cert show --file" $j cert show --file "$T/hostile.pem"
    expect_rc 0 "ukey $j cert show --file"
    run "$j cert export" $j cert export "$SERIAL" --id 77
    expect_rc 0 "ukey $j cert export"
    run "$j cert write (already there)" $j cert write "$SERIAL" --file "$T/hostile.pem" --pin-fd 3 3<<<"$U1"
    expect_rc 0 "ukey $j cert write"
    run "$j key list" $j key list "$SERIAL" --pin-fd 3 3<<<"$U1"
    expect_rc 0 "ukey $j key list"
    run "$j cert delete (no such label)" $j cert delete "$SERIAL" --label "$OSC52$FORGE" --yes --pin-fd 3 3<<<"$U1"
    expect_rc 9 "ukey $j cert delete of a label that is not there"
    run "$j pin verify (fakecard, wrong PIN)" $j pin verify "pkcs11:serial=%FF%FE%1B%5B2J" --pin-fd 3 3<<<"Wrong-esc-1234"
done

step "what the escapes look like"
uk info "$SERIAL"
assert_contains "$OUT" "Key '\\x1b[2J\\xd6\\xd0\\xce\\xc4\\u009b\\x0aukey: fake line'" "info: the Key's label"
assert_contains "$OUT" "'\\xd6\\xd0\\xce\\xc4'" "info: a GBK object label"
assert_contains "$OUT" "'\\xff\\xfe'" "info: an invalid UTF-8 object label"
assert_contains "$OUT" "'\\x1b]52;c;ZXZpbA==\\x07'" "info: an OSC 52 object label"
assert_contains "$OUT" "'$ZH'" "info: a Chinese object label stays Chinese"
uk list
assert_contains "$OUT" "Key '\\x1b]52;c;ZXZpbA==\\x07\\x0aukey: fake line'  serial \\xff\\xfe\\x1b[2J" "list: the fakecard"
assert_contains "$OUT" "\\x1b[2J\\u009b\\x7f\\xd6\\xd0\\xce\\xc4\\u202e $ZH\\x0d\\x09\\x01)" "list: manufacturer and model"
uk cert show --file "$T/hostile.pem"
assert_contains "$OUT" "O=$ZH" "cert show --file: Chinese in the subject"
assert_contains "$OUT" "DNS:a\\x1b[2J.example" "cert show --file: the SAN"
assert_contains "$OUT" "http://crl/\\x1b]52;c;ZXZpbA==\\x07" "cert show --file: the CRL URL"

step "--json: valid documents, exact values where they are UTF-8, U+FFFD where not"
uk --json list
expect_rc 0 "ukey --json list"
fc=$(jq -c '.keys[] | select(.backend == "fakecard")' <<<"$OUT")
jeq "$fc" '.label' "$(jq -Rn --arg v "$OSC52$FORGE" '$v')" "the fakecard's label in --json"
jeq "$fc" '.serial' "$(jq -cn '"\ufffd\ufffd\u001b[2J"')" "the fakecard's serial in --json"
uk --json info "$SERIAL"
expect_rc 0 "ukey --json info"
jeq "$OUT" '[.objects[] | select(.class == "data") | .label] | sort' \
    "$(jq -cn --arg a "$OSC52" --arg b "x$FORGE" --arg c "$C1$RLO" --arg z "$ZH" \
        '[$a, $b, $c, $z, "\ufffd\ufffd", "\ufffd\ufffd\ufffd\ufffd"] | sort')" "data object labels in --json"
uk --json info nosuchkey
jerror 3 "ukey --json info nosuchkey"
assert_contains "$(jr "$OUT" '.error.message')" $'\ufffd' "the candidates in the JSON error"

step "PIN file options: their argument is never echoed"
# pin_file_case OPTION ARGS...: ukey ARGS OPTION 8675309 fails without the
# argument in its output, naming the file by its option.
pin_file_case() {
    local opt=$1; shift
    uk "$@" "$opt" 8675309 3<<<"$U1"
    ((RC != 0)) || fail "ukey $* $opt 8675309 succeeded"
    assert_not_contains "$OUT$ERR" 8675309 "ukey $* $opt 8675309"
    assert_contains "$ERR" "file given with $opt: No such file or directory" "ukey $* $opt 8675309"
}
pin_file_case --pin-file pin verify "$SERIAL"
pin_file_case --pin-file pin change "$SERIAL" --new-pin-fd 3
pin_file_case --new-pin-file pin change "$SERIAL" --pin-fd 3
pin_file_case --so-pin-file pin unlock "$SERIAL" --new-pin-fd 3
pin_file_case --so-pin-file init "$SERIAL" --label x --yes --pin-fd 3
pin_file_case --pin-file cert write "$SERIAL" --file "$T/hostile.pem"
pin_file_case --pin-file key generate "$SERIAL" --type ec-p256
for bad in "--pin-fd 8675309" "--pin-fd 8675309x" "--pin-fd=8675309x" "--pin-file=" "--pin 8675309" "--pin=8675309"; do
    # shellcheck disable=SC2086
    uk pin verify "$SERIAL" $bad
    ((RC != 0)) || fail "ukey pin verify $bad succeeded"
    assert_not_contains "$OUT$ERR" 8675309 "ukey pin verify $bad"
done
chmod 0644 "$T/data.bin"
uk pin verify "$SERIAL" --pin-file "$T/data.bin"
assert_contains "$ERR" "PIN file given with --pin-file is readable by other users" "a PIN file others can read"
assert_not_contains "$ERR" "$T/data.bin" "the PIN file's warning"

step "all output together"
clean "$T/all.out" "everything ukey printed"
finish
