#!/usr/bin/env bash
# ukey audit show / verify on a log written through token/audit_log.h (by
# the test-only writer $AUDIT_WRITER, which controls every field, so that
# tampering and hostile text can be made; audit_events.sh has the module's):
# records and their --json fields, the filters, hostile strings from a Key
# (and from an edited file) escaped on output, tampering found and named
# (exit 16), rotation verified across files (docs/audit.md).
. "$(dirname "$0")/lib.sh"
: "${AUDIT_WRITER:?AUDIT_WRITER must name ukey-test-audit-writer}"
cli_setup
LOG=$T/state/audit/audit.log

# w KIND KEY USER_TYPE RV DETAIL [COUNT]
w() { "$AUDIT_WRITER" "$@" || fail "the audit writer failed: $*"; }
# no_raw_controls FILE WHAT: no byte below 0x20 but newlines, no DEL, no C1.
no_raw_controls() {
    if LC_ALL=C grep -qP '[\x00-\x09\x0b-\x1f\x7f]|\xc2[\x80-\x9f]' "$1"; then
        show "$2" "$(cat -v "$1")"
        fail "$2 holds raw control bytes"
    fi
}

step "no log yet: nothing to show, nothing wrong"
ok audit show
assert_eq "$OUT" "No audit records." "empty show"
ok --json audit verify
json_ok "$OUT" "verify --json"
jkeys "$OUT" '.' "ok records first_seq last_seq files notes first_bad_seq file line why" "verify --json"
jeq "$OUT" '.ok' true
jeq "$OUT" '.records' 0

step "records written through the API read back field by field"
w login-failed "softhsm, Alice, 0123" user 0xa0 ""
w login "softhsm, Alice, 0123" user 0 ""
w object-created "softhsm, Bob, 0456" "" 0 'certificate "mail"'
w key-generated "softhsm, Bob, 0456" user 0 "private-key ec-p256"
[[ -f $LOG ]] || fail "no audit.log in <state_dir>/audit (the default folder)"
[[ $(stat -c %a "$LOG") == 600 && $(stat -c %a "$(dirname "$LOG")") == 700 ]] || fail "the log is not 0600 in 0700"
ok --json audit show
json_ok "$OUT" "show --json"
jkeys "$OUT" '.' "records unreadable"
jeq "$OUT" '.records | length' 4
jeq "$OUT" '.unreadable' 0
jkeys "$OUT" '.records[0]' "seq time kind key user_type rv ckr detail pid uid exe prev hash file line"
jeq "$OUT" '[.records[].seq]' '[1,2,3,4]'
jeq "$OUT" '[.records[].kind]' '["login-failed","login","object-created","key-generated"]'
jeq "$OUT" '.records[0].key' '"softhsm, Alice, 0123"'
jeq "$OUT" '.records[0].user_type' '"user"'
jeq "$OUT" '.records[0].rv' 160
jeq "$OUT" '.records[0].ckr' '"CKR_PIN_INCORRECT"'
jeq "$OUT" '.records[2].detail' '"certificate \"mail\""'
jeq "$OUT" '.records[2].user_type' '""'
jeq "$OUT" '.records[0].uid' "$(id -u)"
jtype "$OUT" '.records[0].pid' number
jmatch "$OUT" '.records[0].exe' 'ukey-test-audit-writer$'
jmatch "$OUT" '.records[0].time' '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z$'
jeq "$OUT" '.records[0].prev' "\"$(printf '0%.0s' {1..64})\""
jeq "$OUT" '.records[1].prev == .records[0].hash' true
jeq "$OUT" '.records[3].line' 4
jeq "$OUT" '.records[3].file' "\"$LOG\""

step "text: one line per record"
ok audit show
assert_eq "$(wc -l <<<"$OUT")" 4 "lines of ukey audit show"
first=$(head -n1 <<<"$OUT")
assert_contains "$first" "#1  login-failed (user)  CKR_PIN_INCORRECT" "ukey audit show"
assert_contains "$first" 'key="softhsm, Alice, 0123"' "ukey audit show"
assert_matches "$first" "pid [0-9]+ uid $(id -u) .*ukey-test-audit-writer$" "ukey audit show"

step "filters"
ok --json audit show --kind login
jeq "$OUT" '[.records[].seq]' '[2]'
ok --json audit show --key Bob
jeq "$OUT" '[.records[].seq]' '[3,4]'
ok --json audit show --since 1h --key Alice
jeq "$OUT" '[.records[].seq]' '[1,2]'
ok --json audit show --since "$(date -u +%Y-%m-%d)"
jeq "$OUT" '.records | length' 4
ok audit show --since 2999-01-01T00:00
assert_eq "$OUT" "No audit records match." "show --since in the future"
for bad in "--since 2026-02-30" "--since 25h7" "--since yesterday" "--kind logout" "--since 2026-01-01T24:00"; do
    # shellcheck disable=SC2086
    uk audit show $bad
    expect_rc 2 "ukey audit show $bad"
done

step "verify: an intact log"
ok audit verify
assert_eq "$OUT" "The audit log is intact: 4 record(s), seq 1..4, in 1 file(s)." "ukey audit verify"
ok --json audit verify
jeq "$OUT" '.ok' true
jeq "$OUT" '.records' 4
jeq "$OUT" '[.first_seq, .last_seq, .first_bad_seq, .file, .line, .why]' '[1,4,null,null,null,null]'
jeq "$OUT" '.files' "[\"$LOG\"]"

step "hostile strings from a Key come out escaped"
w login $'Evil\e]52;c;ZXZpbA==\a\e[2J\xff\xfe\r\nukey: fake\xc2\x9b' $'\e[31m' 0 $'\xe2\x80\xaeevil'
no_raw_controls "$LOG" "the audit log itself"
ok audit show --key Evil
no_raw_controls "$T/uk.out" "ukey audit show"
assert_contains "$OUT" 'Evil\x1b]52;c;ZXZpbA==\x07\x1b[2J\xff\xfe\x0d\x0aukey: fake\u009b' "ukey audit show"
assert_contains "$OUT" '\u202eevil' "ukey audit show (bidi override)"
assert_eq "$(wc -l <<<"$OUT")" 1 "the hostile record is one line"
ok --json audit show --key Evil
json_ok "$OUT"
no_raw_controls "$T/uk.out" "ukey --json audit show"
jeq "$OUT" '.records[0].user_type' '"\\x1b[31m"'
ok audit verify

step "an edited file holding raw escapes is still shown escaped"
cp "$LOG" "$T/log.good"
sed -i '5s/Evil/Evil\\u001b[41m\\u0007/' "$LOG"
ok audit show --key Evil
no_raw_controls "$T/uk.out" "ukey audit show of an edited record"
assert_contains "$OUT" 'Evil\x1b[41m\x07' "ukey audit show of an edited record"
uk --json audit verify
expect_rc 16 "verify of an edited record"
jeq "$OUT" '[.ok, .first_bad_seq, .line]' '[false,5,5]'
jmatch "$OUT" '.why' 'edited'
no_raw_controls "$T/uk.err" "stderr of ukey audit verify"
cp "$T/log.good" "$LOG"

step "tampering: verify fails with exit 16 naming the first bad record"
# verify_bad SEQ LINE WORD: the last `uk --json audit verify` failed so.
verify_bad() {
    uk --json audit verify
    expect_rc 16 "ukey --json audit verify ($3)"
    json_ok "$OUT"
    jeq "$OUT" '.ok' false "$3"
    jeq "$OUT" '.first_bad_seq' "$1" "$3"
    jeq "$OUT" '.line' "$2" "$3"
    jeq "$OUT" '.file' "\"$LOG\"" "$3"
    jmatch "$OUT" '.why' "$3" "$3"
    assert_contains "$ERR" "ukey: the audit log fails verification: record seq $1" "$3 (stderr)"
    uk audit verify
    expect_rc 16 "ukey audit verify ($3)"
    assert_contains "$ERR" "record seq $1" "$3 (stderr, text)"
    [[ -z $OUT ]] || fail "ukey audit verify printed on stdout when it failed: $OUT"
}
sed -i '2d' "$LOG"
verify_bad 2 2 "missing"
cp "$T/log.good" "$LOG"
sed -i '3s/mail/mall/' "$LOG"
verify_bad 3 3 "edited"
cp "$T/log.good" "$LOG"
sed -i '2{h;d};3{G}' "$LOG"   # swap records 2 and 3
verify_bad 3 2 "reordered"
cp "$T/log.good" "$LOG"
sed -i '3p' "$LOG"            # record 3 twice
verify_bad 3 4 "inserted"
cp "$T/log.good" "$LOG"
sed -i '1d' "$LOG"
verify_bad 1 1 "removed from the start"
head -n 3 "$T/log.good" >"$LOG"
verify_bad 4 4 "cut off"
head -c -40 "$T/log.good" >"$LOG"
verify_bad 5 5 "cut short"
cp "$T/log.good" "$LOG"
ok audit verify

step "rotation: the chain is checked across the kept files"
printf '\n[audit]\nmax_bytes = 4096\nkeep = 2\n' >>"$T/ukey.conf"
w set-pin "softhsm, Alice, 0123" user 0 "" 60
ok --json audit verify
jeq "$OUT" '.ok' true
jeq "$OUT" '.files | length' 3
jeq "$OUT" '.last_seq' 65
jmatch "$OUT" '.notes[0]' 'rotated away'
ok audit verify
assert_contains "$OUT" "note: the log starts at seq" "verify after rotation"
sed -i '2d' "$LOG.1"
uk --json audit verify
expect_rc 16 "a record removed from audit.log.1"
jeq "$OUT" '.file' "\"$LOG.1\""
jeq "$OUT" '.line' 2

step "a broken config is a setup error"
echo 'bogus = 1' >>"$T/ukey.conf"
uk audit show
expect_rc 10 "ukey audit show with a broken config"
assert_contains "$ERR" "cannot tell where the audit log is" "broken config"

finish
