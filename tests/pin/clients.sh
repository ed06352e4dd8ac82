#!/usr/bin/env bash
# The PIN lockout of libukey-pkcs11.so as real clients see it:
#   - pkcs11-tool: 6 wrong PINs answer CKR_PIN_INCORRECT, with the token flags
#     (pkcs11-tool -L) going "user PIN count low" -> "final user PIN try" ->
#     "user PIN locked"; from then on CKR_PIN_LOCKED, the right PIN included;
#     the SO unlocks with --init-pin (a trivial new PIN is refused);
#   - OpenSSL + the libp11 engine with a wrong PIN in its configuration: a
#     clean login failure, non-zero exit, no crash; one try per run; once
#     locked the right PIN fails too.
# The exact count is read from ukey's state file (format: docs/pin-policy.md).
#
# Known third-party crash: libp11 0.4.12 closes its sessions from
# OPENSSL_cleanup() at exit after a failed login, and SoftHSM2 2.6.1 crashes
# in C_CloseAllSessions at that point (its OpenSSL state is already gone).
# It happens the same with SoftHSM2 loaded directly, without ukey. The script
# runs that reference and only fails on a crash through ukey that the
# reference does not show; UKEY_PIN_STRICT_CRASH=1 fails on any crash.
. "$(dirname "$0")/../clients/lib.sh"
need pkcs11-tool openssl
ukey_setup
ulimit -c 0 # a crash must not leave a core file behind

WRONG_PIN=999999
NEW_PIN=246813 # C_InitPIN applies PIN quality: not trivial

# tries_left: the user count of the newest record in the Key's state file.
tries_left() {
    local files=("$T"/state/pin/*.pin)
    [[ ${#files[@]} -eq 1 && -f ${files[0]} ]] || fail "expected one state file in $T/state/pin, found: ${files[*]}"
    grep -ao 'seq=[0-9]* user=[0-9]*/[0-9]*' "${files[0]}" |
        sort -t= -k2,2n | tail -1 | sed 's/.*user=\([0-9]*\)\/.*/\1/'
}
assert_tries() {
    local n
    n=$(tries_left)
    [[ $n == "$1" ]] || fail "${2:-state}: $n user tries left, expected $1"
}

# token_flags: the "token flags" line of pkcs11-tool -L for our token.
token_flags() { p11 -L | grep -A12 "token label *: *$TOKEN_LABEL" | grep 'token flags'; }

# try_login PIN: pkcs11-tool logging in with PIN; prints its output, returns its status.
try_login() {
    ukc pkcs11-tool --module "$UKEY_MODULE" --token-label "$TOKEN_LABEL" --login --pin "$1" --list-objects 2>&1
}

step "a key pair on the Key (right PIN)"
out=$(p11_login --keypairgen --key-type EC:prime256v1 --id 01 --label pin-key)
assert_contains "$out" "Key pair generated" "keypairgen"
flags=$(token_flags)
assert_not_contains "$flags" "count low" "flags after the right PIN"

step "pkcs11-tool: 6 wrong PINs"
for i in 1 2 3 4 5 6; do
    rc=0
    out=$(try_login "$WRONG_PIN") || rc=$?
    [[ $rc -ne 0 ]] || fail "wrong PIN #$i: pkcs11-tool succeeded"
    assert_contains "$out" "CKR_PIN_INCORRECT" "wrong PIN #$i"
    assert_tries $((6 - i)) "after wrong PIN #$i"
    flags=$(token_flags)
    log "after wrong PIN #$i: $flags"
    assert_contains "$flags" "user PIN count low" "flags after wrong PIN #$i"
    if [[ $i -eq 5 ]]; then
        assert_contains "$flags" "final user PIN try" "flags after wrong PIN #$i"
    else
        assert_not_contains "$flags" "final user PIN try" "flags after wrong PIN #$i"
    fi
    if [[ $i -eq 6 ]]; then
        assert_contains "$flags" "user PIN locked" "flags after wrong PIN #$i"
    else
        assert_not_contains "$flags" "user PIN locked" "flags after wrong PIN #$i"
    fi
done

step "pkcs11-tool: locked, the right PIN included"
rc=0
out=$(try_login "$WRONG_PIN") || rc=$?
[[ $rc -ne 0 ]] || fail "7th wrong PIN: pkcs11-tool succeeded"
assert_contains "$out" "CKR_PIN_LOCKED" "7th wrong PIN"
rc=0
out=$(try_login "$USER_PIN") || rc=$?
[[ $rc -ne 0 ]] || fail "right PIN on a locked Key: pkcs11-tool succeeded"
assert_contains "$out" "CKR_PIN_LOCKED" "right PIN on a locked Key"
assert_tries 0 "locked"
assert_contains "$(p11 -L)" "user PIN locked" "pkcs11-tool -L"

step "pkcs11-tool: SO unlock"
rc=0
out=$(ukc pkcs11-tool --module "$UKEY_MODULE" --token-label "$TOKEN_LABEL" --login --login-type so \
        --so-pin "$SO_PIN" --init-pin --new-pin 123456 2>&1) || rc=$?
[[ $rc -ne 0 ]] || fail "a trivial new PIN was accepted"
assert_contains "$out" "CKR_PIN_INVALID" "--init-pin 123456"
assert_tries 0 "after the refused unlock"
out=$(p11 --token-label "$TOKEN_LABEL" --login --login-type so --so-pin "$SO_PIN" --init-pin --new-pin "$NEW_PIN")
assert_contains "$out" "User PIN successfully initialized" "--init-pin"
assert_tries 6 "after the unlock"
flags=$(token_flags)
assert_not_contains "$flags" "user PIN locked" "flags after the unlock"
assert_not_contains "$flags" "count low" "flags after the unlock"
out=$(p11 --token-label "$TOKEN_LABEL" --login --pin "$NEW_PIN" --list-objects --type privkey)
assert_contains "$out" "pin-key" "login with the new PIN"

# ---------------------------------------------------------------------------
if [[ ! -r $ENGINE_SO ]]; then
    log "libp11 engine $ENGINE_SO not installed: OpenSSL part skipped"
    exit 0
fi

engine_conf "$T/wrong.cnf" "$UKEY_MODULE" "$WRONG_PIN"
engine_conf "$T/right.cnf" "$UKEY_MODULE" "$NEW_PIN"
engine_conf "$T/reference.cnf" "$SOFTHSM_MODULE" "$WRONG_PIN"
printf 'sign me\n' >"$T/data"
URI="pkcs11:token=$TOKEN_LABEL;object=pin-key;type=private"

# sign CONF: openssl pkeyutl -sign with the key on the Key; sets RC and OUT.
sign() {
    RC=0
    OUT=$(OPENSSL_CONF="$1" ukc openssl pkeyutl -engine pkcs11 -keyform engine -inkey "$URI" \
            -sign -in "$T/data" -out "$T/sig" </dev/null 2>&1) || RC=$?
}
crashed() { # status output
    [[ $1 -ge 128 ]] || grep -qE 'AddressSanitizer|UndefinedBehaviorSanitizer|runtime error:' <<<"$2"
}

step "OpenSSL + libp11: the right PIN signs"
sign "$T/right.cnf"
[[ $RC -eq 0 ]] || { printf '%s\n' "$OUT" >&2; fail "signing with the right PIN failed ($RC)"; }
[[ -s $T/sig ]] || fail "no signature written"
assert_tries 6 "after signing"

step "reference: a wrong PIN with SoftHSM2 loaded directly (no ukey)"
sign "$T/reference.cnf"
REF_RC=$RC
REF_CRASH=0
if crashed "$RC" "$OUT"; then
    REF_CRASH=1
    log "reference run crashed too (status $RC): the known libp11/SoftHSM2 exit crash"
fi
assert_tries 6 "after the reference run (ukey not involved)"

step "OpenSSL + libp11: wrong PIN until locked"
for i in 1 2 3 4 5 6; do
    rm -f "$T/sig"
    sign "$T/wrong.cnf"
    [[ $RC -ne 0 ]] || fail "wrong PIN #$i: openssl succeeded"
    [[ ! -s $T/sig ]] || fail "wrong PIN #$i: a signature was written"
    assert_matches "$OUT" "Login failed|PIN incorrect" "openssl, wrong PIN #$i"
    if crashed "$RC" "$OUT"; then
        # The exit crash does not come every time: one clean reference run
        # does not show SoftHSM2 free of it. Ask the reference again.
        for _ in 1 2 3 4 5 6 7 8; do
            [[ $REF_CRASH -eq 1 || ${UKEY_PIN_STRICT_CRASH:-0} == 1 ]] && break
            OUT_UKEY=$OUT RC_UKEY=$RC
            sign "$T/reference.cnf"
            crashed "$RC" "$OUT" && { REF_CRASH=1 REF_RC=$RC; log "the reference run crashed too on a later try (status $RC)"; }
            OUT=$OUT_UKEY RC=$RC_UKEY
        done
        if [[ $REF_CRASH -eq 1 && ${UKEY_PIN_STRICT_CRASH:-0} != 1 ]]; then
            log "wrong PIN #$i: openssl crashed (status $RC) as in the reference run (status $REF_RC)"
        else
            printf '%s\n' "$OUT" >&2
            fail "wrong PIN #$i: openssl crashed (status $RC); the reference run did not (status $REF_RC)"
        fi
    fi
    assert_tries $((6 - i)) "after openssl wrong PIN #$i" # one try per run, never more
done
assert_contains "$(token_flags)" "user PIN locked" "flags after 6 wrong PINs through OpenSSL"

step "OpenSSL + libp11: locked, the right PIN fails too"
rm -f "$T/sig"
sign "$T/right.cnf"
[[ $RC -ne 0 ]] || fail "the right PIN signed on a locked Key"
[[ ! -s $T/sig ]] || fail "a signature was written on a locked Key"
assert_matches "$OUT" "Login failed|PIN locked" "openssl, right PIN on a locked Key"
if crashed "$RC" "$OUT" && [[ $REF_CRASH -ne 1 || ${UKEY_PIN_STRICT_CRASH:-0} == 1 ]]; then
    printf '%s\n' "$OUT" >&2
    fail "openssl crashed (status $RC) on a locked Key"
fi
assert_tries 0 "still locked"
