#!/usr/bin/env bash
# OpenSC pkcs11-tool through the module: slots/tokens, RSA-2048 and EC P-256
# key generation, signatures checked with OpenSSL and with the token.
. "$(dirname "$0")/lib.sh"
ukey_setup

step "module info, slots and tokens"
out=$(p11 --show-info)
assert_matches "$out" 'Cryptoki version [0-9]+\.[0-9]+' "--show-info"
out=$(p11 --list-slots)
assert_matches "$out" "token label +: $TOKEN_LABEL\$" "--list-slots"
assert_matches "$out" 'token state: +uninitialized|token flags +:.*token initialized' "--list-slots"
assert_contains "$out" "PIN initialized" "--list-slots"
out=$(p11 --list-token-slots)
assert_matches "$out" "token label +: $TOKEN_LABEL\$" "--list-token-slots"

step "empty token: no private objects"
out=$(p11_login --list-objects --type privkey)
assert_not_contains "$out" "Private Key Object" "--list-objects on a fresh token"

step "generate RSA-2048 key pair"
out=$(p11_login --keypairgen --key-type rsa:2048 --id 01 --label rsa1)
assert_contains "$out" "Key pair generated" "rsa keypairgen"
assert_matches "$out" 'Private Key Object; RSA' "rsa keypairgen"
assert_matches "$out" 'Public Key Object; RSA 2048 bits' "rsa keypairgen"

step "generate EC P-256 key pair"
out=$(p11_login --keypairgen --key-type EC:prime256v1 --id 02 --label ec1)
assert_contains "$out" "Key pair generated" "ec keypairgen"
assert_matches "$out" 'Private Key Object; EC' "ec keypairgen"
assert_matches "$out" 'Public Key Object; EC +EC_POINT 256 bits' "ec keypairgen"

step "list objects"
out=$(p11_login --list-objects)
assert_count "$out" '^Private Key Object' 2 "--list-objects"
assert_count "$out" '^Public Key Object' 2 "--list-objects"
assert_matches "$out" 'label: +rsa1' "--list-objects"
assert_matches "$out" 'label: +ec1' "--list-objects"
# Without login only the public objects are visible.
out=$(p11 --token-label "$TOKEN_LABEL" --list-objects)
assert_count "$out" '^Public Key Object' 2 "--list-objects (no login)"
assert_not_contains "$out" "Private Key Object" "--list-objects (no login)"

head -c 1000 /dev/urandom >"$T/data"
printf 'tampered' | cat "$T/data" - >"$T/data.bad"

for id in 01 02; do
    p11 --read-object --type pubkey --id $id -o "$T/pub$id.der" >/dev/null
    der_to_pem_pubkey "$T/pub$id.der" "$T/pub$id.pem"
done
out=$(openssl pkey -pubin -in "$T/pub01.pem" -text -noout)
assert_contains "$out" "Public-Key: (2048 bit)" "RSA public key read off the token"
out=$(openssl pkey -pubin -in "$T/pub02.pem" -text -noout)
assert_contains "$out" "NIST CURVE: P-256" "EC public key read off the token"

# verify_openssl PUBPEM SIG DATA [openssl dgst options...]
verify_openssl() {
    local pub=$1 sig=$2 data=$3; shift 3
    openssl dgst -sha256 -verify "$pub" -signature "$sig" "$@" "$data" 2>&1 || true
}

step "RSA PKCS#1 v1.5 signature (SHA256-RSA-PKCS), verified by OpenSSL"
p11_login --sign --id 01 --mechanism SHA256-RSA-PKCS -i "$T/data" -o "$T/sig-rsa" >/dev/null
[[ $(stat -c %s "$T/sig-rsa") -eq 256 ]] || fail "RSA-2048 signature is not 256 bytes"
out=$(verify_openssl "$T/pub01.pem" "$T/sig-rsa" "$T/data")
assert_contains "$out" "Verified OK" "openssl verify (rsa)"
out=$(verify_openssl "$T/pub01.pem" "$T/sig-rsa" "$T/data.bad")
assert_contains "$out" "Verification failure" "openssl verify of tampered data (rsa)"

step "RSA-PSS signature (SHA256-RSA-PKCS-PSS), verified by OpenSSL"
p11_login --sign --id 01 --mechanism SHA256-RSA-PKCS-PSS -i "$T/data" -o "$T/sig-pss" >/dev/null
out=$(verify_openssl "$T/pub01.pem" "$T/sig-pss" "$T/data" \
        -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:32)
assert_contains "$out" "Verified OK" "openssl verify (rsa-pss)"

step "ECDSA P-256 signature (CKM_ECDSA over a SHA-256 hash), verified by OpenSSL"
# SoftHSM2 2.6 has no CKM_ECDSA_SHA256: hash here, sign the hash on the token.
openssl dgst -sha256 -binary -out "$T/data.sha256" "$T/data"
openssl dgst -sha256 -binary -out "$T/data.bad.sha256" "$T/data.bad"
p11_login --sign --id 02 --mechanism ECDSA --signature-format openssl \
    -i "$T/data.sha256" -o "$T/sig-ec" >/dev/null
out=$(verify_openssl "$T/pub02.pem" "$T/sig-ec" "$T/data")
assert_contains "$out" "Verified OK" "openssl verify (ecdsa)"
out=$(verify_openssl "$T/pub02.pem" "$T/sig-ec" "$T/data.bad")
assert_contains "$out" "Verification failure" "openssl verify of tampered data (ecdsa)"

step "signatures verified on the token (pkcs11-tool --verify)"
out=$(p11_login --verify --id 01 --mechanism SHA256-RSA-PKCS -i "$T/data" --signature-file "$T/sig-rsa")
assert_contains "$out" "Signature is valid" "pkcs11-tool --verify (rsa)"
out=$(p11_login --verify --id 02 --mechanism ECDSA --signature-format openssl \
        -i "$T/data.sha256" --signature-file "$T/sig-ec")
assert_contains "$out" "Signature is valid" "pkcs11-tool --verify (ecdsa)"
# A bad signature must be rejected (pkcs11-tool 0.23 says so but exits 0).
out=$(ukc pkcs11-tool --module "$UKEY_MODULE" --token-label "$TOKEN_LABEL" --login --pin "$USER_PIN" \
        --verify --id 02 --mechanism ECDSA --signature-format openssl \
        -i "$T/data.bad.sha256" --signature-file "$T/sig-ec" 2>&1) || true
assert_contains "$out" "Invalid signature" "pkcs11-tool --verify of tampered data"
assert_not_contains "$out" "Signature is valid" "pkcs11-tool --verify of tampered data"

step "a wrong PIN is refused"
out=$(ukc pkcs11-tool --module "$UKEY_MODULE" --token-label "$TOKEN_LABEL" --login --pin 000000 \
        --list-objects 2>&1) && fail "login with a wrong PIN succeeded: $out"
assert_contains "$out" "CKR_PIN_INCORRECT" "login with a wrong PIN"
# ...and the right one still works afterwards.
out=$(p11_login --list-objects --type privkey)
assert_count "$out" '^Private Key Object' 2 "--list-objects after a failed login"
