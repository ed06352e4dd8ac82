#!/usr/bin/env bash
# Must-show 4: daemon-triggered renewal of a certificate that expires in 2
# days with the threshold at 7.
#  A. The daemon's decision (tools/ukeyd/renewal_trigger.cpp) on what
#     `ukeyd --scan` reports: no command above the threshold, `ukey renew
#     --unattended` at 7 days; run as ukeyd runs it (argv, no shell,
#     UKEY_CONF) it renews with the root-only PIN file; a crashed renewal
#     gives a `--resume` command for the Key; a PIN file others can read is
#     refused.
#  B. ukeyd itself, started with [expiry] thresholds = [7]: the certificate
#     is renewed without anyone asking, with renewal events.
. "$(dirname "$0")/lib.sh"
: "${UKEY_RENEWAL_TRIGGER:?UKEY_RENEWAL_TRIGGER must name the ukey-renewal-trigger test tool}"
[[ -n ${UKEYD:-} && -x ${UKEYD:-} ]] || skip "ukeyd is not built (UKEYD unset)"
cli_setup
# Certificates valid for 2 days.
scep_start -crtvalid 2
enrol_key Alice
jeq "$OUT" "(.certificate.days_left | . >= 1 and . <= 2)" true "a certificate that expires in 2 days"
OLD_ID=$CERT_ID

printf '%s\n' "$USER_PIN" >"$T/renewal.pin"
chmod 600 "$T/renewal.pin" "$T/challenge"
cp "$T/ukey.conf" "$T/ukey.conf.base"
# conf THRESHOLD: ukey.conf with a [renewal] section for Alice.
conf() {
    cp "$T/ukey.conf.base" "$T/ukey.conf"
    cat >>"$T/ukey.conf" <<CONF

[daemon]
socket = "$T/ukeyd.sock"
pcsc = false
rescan_interval = 1

[expiry]
thresholds = [7]

[renewal]
pin_file = "$T/renewal.pin"
ukey = "$UKEY"
timeout = 20

[[renewal.ca]]
name = "lab"
url = "$SCEP_URL"
fingerprint = "$SCEP_FP"
keys = ["Alice"]
challenge_file = "$T/challenge"
threshold = $1
CONF
}

# commands: what the trigger decides on a fresh `ukeyd --scan`.
commands() {
    local scan
    scan=$(timeout 30 "$UKEYD" --scan) || fail "ukeyd --scan failed"
    "$UKEY_RENEWAL_TRIGGER" <<<"$scan" || fail "the trigger tool failed"
}

# run_argv JSON_ARGV [CRASH_STEP]: runs it as ukeyd would (no shell),
# records OUT/RC; with CRASH_STEP, expects the crash switch to fire.
run_argv() {
    local -a argv
    mapfile -t argv < <(jq -r '.[]' <<<"$1")
    [[ ${argv[0]} == "$UKEY" ]] || fail "the command does not run the configured ukey: ${argv[0]}"
    if [[ -n ${2:-} ]]; then uk_crash "$2" "${argv[@]:1}"; else uk "${argv[@]:1}"; fi
}

step "A1: no renewal above the threshold, nor for a Key no CA serves"
conf 7
scan=$(timeout 30 "$UKEYD" --scan) || fail "ukeyd --scan failed"
cmds=$("$UKEY_RENEWAL_TRIGGER" <<<"$(jq -c '.keys[].certificates[].days_left = 8' <<<"$scan")")
[[ -z $cmds ]] || { show commands "$cmds"; fail "a renewal was proposed with 8 days left (threshold 7)"; }
sed -i 's/^keys = \["Alice"\]/keys = ["Bob*"]/' "$T/ukey.conf"
cmds=$(commands)
[[ -z $cmds ]] || { show commands "$cmds"; fail "a renewal was proposed for a Key no [[renewal.ca]] serves"; }

step "A2: threshold 7 days: \`ukey renew --unattended\` for Alice's certificate"
conf 7
cmds=$(commands)
[[ $(wc -l <<<"$cmds") == 1 ]] || { show commands "$cmds"; fail "expected one command"; }
jeq "$cmds" '.[1:]' "[\"--json\",\"renew\",$(jr "$(timeout 30 "$UKEYD" --scan)" '.keys[0].slot_id | tostring | tojson'),\"--cert\",\"$OLD_ID\",\"--ca-name\",\"lab\",\"--unattended\"]" "renewal command"
assert_not_contains "$cmds" "$USER_PIN" "the command line"

step "A3: a PIN file other users can read is refused, nothing changes"
chmod 644 "$T/renewal.pin"
run_argv "$cmds"
jerror 10 "PIN file 0644"
assert_contains "$ERR" "must be owned by root with mode 0600" "PIN file 0644"
chmod 600 "$T/renewal.pin"
ok --json cert list Alice
jeq "$OUT" '[.certificates[] | select(.category == "user") | .id]' "[\"$OLD_ID\"]" "after the refused PIN file"

step "A4: a crash mid-renewal, then the trigger's --resume command completes it"
run_argv "$cmds" cert_received
cmds=$(commands)
head -n1 <<<"$cmds" | jq -e '.[-2:] == ["--resume", "--unattended"]' >/dev/null \
    || { show commands "$cmds"; fail "no --resume command for the Key with a journal"; }
run_argv "$(head -n1 <<<"$cmds")"
expect_rc 0 "ukey renew --resume --unattended"
jeq "$OUT" '.state' '"completed"' "resume"
NEW_ID=$(jr "$OUT" '.key_id')
[[ $NEW_ID != "$OLD_ID" ]] || fail "the resumed renewal kept the old key"
ok --json cert list Alice
jeq "$OUT" '[.certificates[] | select(.category == "user") | .id]' "[\"$NEW_ID\"]" "after the resumed renewal"
tls_check "$NEW_ID" Alice "after the daemon-style renewal" || fail "TLS after the daemon-style renewal"
# The renewed certificate is again a 2-day one: the next scan proposes it again.
cmds=$(commands)
jeq "$cmds" '.[5]' "\"$NEW_ID\"" "the renewed certificate is proposed again (still within 7 days)"

step "B: ukeyd renews on its own"
CUR=$NEW_ID
"$UKEYD" --config "$T/ukey.conf" >"$T/ukeyd.log" 2>&1 &
DPID=$!
stop_ukeyd() { kill "$DPID" 2>/dev/null || true; wait "$DPID" 2>/dev/null || true; }
# The bounds below only end a test whose renewal never comes (each wait ends
# as soon as its condition holds).
renewed=
deadline=$(($(now_ms) + 120000))
while (($(now_ms) < deadline)); do
    kill -0 "$DPID" 2>/dev/null || { cat "$T/ukeyd.log" >&2; fail "ukeyd died"; }
    uk --json cert list Alice
    if [[ $RC == 0 ]]; then
        id=$(jq -r '[.certificates[] | select(.category == "user") | .id] | if length == 1 then .[0] else "" end' <<<"$OUT")
        if [[ -n $id && $id != "$CUR" ]]; then renewed=$id; break; fi
    fi
    sleep 0.5
done
[[ -n $renewed ]] || { stop_ukeyd; cat "$T/ukeyd.log" >&2; fail "ukeyd did not renew the 2-day certificate within 120 s"; }
# The certificate is on the Key before `ukey renew` ends; ukeyd logs the end
# once it has reaped it.
wait_until 30 grep -q "renewal of .* finished" "$T/ukeyd.log" \
    || { stop_ukeyd; cat "$T/ukeyd.log" >&2; fail "ukeyd's log has no finished renewal"; }
# Some rescans (rescan_interval = 1) with the new certificate in place: no
# second renewal may start (a sleep before a negative check).
sleep 3
stop_ukeyd
# The renewed certificate is valid for 2 days too (-crtvalid 2), inside the
# threshold: the daemon must not renew it again at once.
[[ $(grep -c "renewal of .* started" "$T/ukeyd.log") == 1 ]] || { cat "$T/ukeyd.log" >&2; fail "ukeyd renewed more than once"; }
tls_check "$renewed" Alice "after ukeyd's renewal" || fail "TLS after ukeyd's renewal"
finish
