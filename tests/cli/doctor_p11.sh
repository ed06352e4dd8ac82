#!/usr/bin/env bash
# ukey doctor, P11: ukey's backend (SoftHSM2) registered with p11-kit as well
# (a .module file p11-kit-proxy loads, checked through p11-kit-proxy itself)
# is found in text and --json with its fix, and is gone once the .module
# file disables it for p11-kit-proxy; the same Key reached through two
# backends, and through a driver registered with p11-kit that is not one. P12: a browser NSS database that loads ukey's module but does not
# show the Key's certificate (its library gone, or the module disabled).
# P14: `ukey key export` / `cert export --with-key` say why not (exit 19).
# Runs in a private mount namespace whose p11-kit module folder is
# the test's own (lib.sh, private_p11kit).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/doctor_lib.sh"
private_p11kit "$@"
cli_setup
[[ -n $P11KIT_MODULES ]] || skip "no private p11-kit module folder (unshare --mount) to register SoftHSM2 in"

new_pins SO U1

# warned ID [ARGS...]: `ukey doctor ARGS` warns (exit 17, text and --json)
# with one finding ID; sets WHAT and FIX (its sentence and its fix).
WHAT='' FIX=''
warned() {
    doctor 17 "${@:2}"
    WHAT=$(finding "$1" warning)
    FIX=$(jq -r --arg id "$1" '.findings[] | select(.id == $id) | .fix' <<<"$DOC")
}
# proxy_sees LABEL yes|no: whether p11-kit-proxy, as a browser loads it,
# shows a token labelled LABEL (the condition itself, not ukey's view of it).
PROXY=/usr/lib/x86_64-linux-gnu/p11-kit-proxy.so
proxy_sees() {
    [[ -r $PROXY ]] || return 0
    local out
    out=$(timeout 30 pkcs11-tool --module "$PROXY" -L 2>&1) || true
    if [[ $2 == yes ]]; then
        assert_contains "$out" "token label        : $1" "p11-kit-proxy shows the Key"
    elif grep -qF "token label        : $1" <<<"$out"; then
        show "pkcs11-tool --module $PROXY -L" "$out"; fail "p11-kit-proxy still shows the Key"
    fi
}

init_key alice "$SO" "$U1"

step "nothing registered with p11-kit: a healthy Key"
doctor 0 alice
jeq "$DOC" '.findings' '[]' "healthy"
proxy_sees alice no

step "SoftHSM2, ukey's backend, registered with p11-kit as its package does"
REG=$P11KIT_MODULES/softhsm2.module
LIB=$(readlink -f "$SOFTHSM_MODULE")
printf '# as Debian'"'"'s softhsm2 package writes it\nmodule: %s\n' "$LIB" >"$REG"
proxy_sees alice yes
warned P11.backend-registered-directly alice
assert_eq "$WHAT" "the backend 'softhsm' ($SOFTHSM_MODULE) is also registered with p11-kit by /usr/share/p11-kit/modules/softhsm2.module, so every program using p11-kit-proxy (Firefox or Chromium set up for it) sees its Keys a second time, straight from the driver and without ukey's PIN lockout" "registered"
assert_eq "$FIX" "as root, \`ukey backend hide softhsm\`: it writes /etc/pkcs11/modules/softhsm2.module, which hides 'softhsm2' from every program and outlasts package updates" "registered: fix"
jeq "$DOC" '.worst' '"warning"' "registered"
# It is about the backend, whichever Key is asked about.
doctor 17
finding P11.backend-registered-directly warning >/dev/null

step "the fix it names: the finding is gone, and back once the override is removed"
if [[ -n ${P11KIT_ETC:-} ]]; then
    ok backend hide softhsm
    proxy_sees alice no
    doctor 0 alice
    no_finding P11.backend-registered-directly
    rm -f "$P11KIT_ETC/softhsm2.module"
    proxy_sees alice yes
    warned P11.backend-registered-directly alice
fi

step "disabled for p11-kit-proxy: the finding is gone"
printf 'disable-in: p11-kit-proxy\n' >>"$REG"
proxy_sees alice no
doctor 0 alice
no_finding P11.backend-registered-directly

step "enabled only in named programs (enable-in): gone, even when it names p11-kit-proxy"
# p11-kit checks enable-in against the program's own name when it loads a
# module (pkcs11-tool here, Firefox there): p11-kit-proxy in it enables
# nothing.
printf 'module: %s\nenable-in: seahorse\n' "$LIB" >"$REG"
proxy_sees alice no
doctor 0 alice
printf 'module: %s\nenable-in: seahorse, p11-kit-proxy\n' "$LIB" >"$REG"
proxy_sees alice no
doctor 0 alice
step "disabled only in another program (disable-in: seahorse): back"
printf 'module: %s\ndisable-in: seahorse\n' "$LIB" >"$REG"
proxy_sees alice yes
warned P11.backend-registered-directly alice
rm -f "$REG"

step "the same Key through two backends (a copy of SoftHSM2's library, the same tokens)"
cp "$LIB" "$T/softhsm-copy.so"
{ cat "$T/ukey.conf"; printf '\n[[backend]]\nname = "again"\nmodule = "%s"\n' "$T/softhsm-copy.so"; } >"$T/twice.conf"
chmod 0600 "$T/twice.conf"
UKEY_CONF=$T/twice.conf warned P11.same-key-twice
assert_contains "$WHAT" "this Key is seen twice, through the backends 'softhsm' (slot " "two backends"
assert_contains "$WHAT" ") and 'again' (slot " "two backends"
assert_eq "$FIX" "keep only one of 'softhsm' and 'again' in $T/twice.conf" "two backends: fix"
assert_contains "$TEXT" "WARNING  Key 'alice' (serial $SERIAL): this Key is seen twice" "two backends: text"
# The copy is another file: not the registered one.
no_finding P11.backend-registered-directly

step "the same Key through a driver registered with p11-kit that is not a backend (a copy of SoftHSM2: another file)"
OTHER=$P11KIT_MODULES/vendor.module
printf 'module: %s\n' "$T/softhsm-copy.so" >"$OTHER"
proxy_sees alice yes
warned P11.key-through-other-module alice
assert_eq "$WHAT" "p11-kit's module 'vendor' ($T/softhsm-copy.so) shows this Key too, so every program using p11-kit-proxy (Firefox or Chromium set up for it) sees it a second time, straight from that driver and without ukey's PIN lockout" "other module"
assert_eq "$FIX" "as root, write the line \`disable-in: p11-kit-proxy\` to /etc/pkcs11/modules/vendor.module (it overrides /usr/share/p11-kit/modules/vendor.module and outlasts package updates)" "other module: fix"
assert_contains "$TEXT" "WARNING  Key 'alice' (serial $SERIAL): p11-kit's module 'vendor'" "other module: text"
no_finding P11.backend-registered-directly
printf 'disable-in: p11-kit-proxy\n' >>"$OTHER"
proxy_sees alice no
doctor 0 alice
no_finding P11.key-through-other-module
rm -f "$OTHER"

step "P12: a browser that loads ukey's module shows the Key's certificate"
need certutil modutil
ok key generate alice --type ec-p256 --id 31 --label "login" --pin-fd 3 3<<<"$U1"
ok csr alice --key 31 --subject "/CN=Login" --out "$T/login.csr" --pin-fd 3 3<<<"$U1"
issue_cert "$T/login.csr" "$T/login.pem" now 100
cat "$T/login.pem" "$T/ca/ca.pem" >"$T/chain.pem"
ok cert write alice --file "$T/chain.pem" --label "login" --pin-fd 3 3<<<"$U1"
DB=$T/.pki/nssdb
mkdir -p "$DB"
certutil -N -d "sql:$DB" --empty-password || fail "certutil -N"
nss() { ukc "$@" </dev/null >"$T/nss.out" 2>&1 || { cat "$T/nss.out" >&2; fail "$*"; }; }
nss modutil -force -dbdir "sql:$DB" -add ukey -libfile "$UKEY_MODULE"
# ukey doctor runs certutil, which loads ukey's module.
uk_runs_nss_tools
# listed TOKEN yes|no: whether certutil lists TOKEN's certificate there.
listed() { nss_lists "$DB" "$1:login" "$2"; }
listed alice yes
doctor 0 alice
no_finding P12.browser-cert-hidden
no_finding P12.browser-module-missing

step "P12: a registration whose library is gone (ukey moved): the certificate is not shown"
mkdir -p "$T/old"
cp "$UKEY_MODULE" "$T/old/libukey-pkcs11.so"
nss modutil -force -dbdir "sql:$DB" -delete ukey
nss modutil -force -dbdir "sql:$DB" -add ukey -libfile "$T/old/libukey-pkcs11.so"
rm "$T/old/libukey-pkcs11.so"
listed alice no
warned P12.browser-cert-hidden alice
assert_eq "$WHAT" "Chromium (~/.pki/nssdb) loads ukey's module but does not show this Key's certificates, so websites there never see them: it names ukey's module as $T/old/libukey-pkcs11.so, which does not exist (ukey was moved or installed elsewhere since)" "stale module"
assert_contains "$FIX" "\`modutil -dbdir sql:$DB -add ukey -libfile $UKEY_MODULE\`" "stale module: fix"
no_finding P12.browser-module-missing

step "P12: the module disabled in the database: not shown either"
nss modutil -force -dbdir "sql:$DB" -delete ukey
nss modutil -force -dbdir "sql:$DB" -add ukey -libfile "$UKEY_MODULE"
listed alice yes
nss modutil -force -dbdir "sql:$DB" -disable ukey
listed alice no
warned P12.browser-cert-hidden alice
assert_contains "$WHAT" "does not show this Key's certificates, so websites there never see them: ukey's module is disabled there, or does not start in it" "disabled module"
nss modutil -force -dbdir "sql:$DB" -enable ukey
doctor 0 alice
UK_AS=()

step "P14: a private key cannot be exported; what to export instead"
SENTENCE="a private key cannot leave the Key, by design: it was made on the Key and stays there so that nobody can copy it; export the certificate instead (\`ukey cert export\`, it holds no secret), and for another computer make a new key on its own Key (\`ukey key generate\`, then \`ukey csr\`) and have your CA certify it"
for args in "key export" "key export alice --id 31 --out $T/k.p12" "cert export alice --with-key" \
    "cert export alice --label login --with-key --out $T/c.p12"; do
    # shellcheck disable=SC2086
    uk $args
    expect_rc 19 "ukey $args"
    assert_eq "$ERR" "ukey: $SENTENCE" "ukey $args"
    assert_eq "$OUT" "" "ukey $args: nothing on stdout"
    # shellcheck disable=SC2086
    uk --json $args
    jerror 19 "ukey --json $args"
done
[[ ! -e $T/k.p12 && ! -e $T/c.p12 ]] || fail "a file was written"
ok cert export alice --label login --out "$T/exported.pem"
cmp -s <(openssl x509 -in "$T/exported.pem" -outform DER) <(openssl x509 -in "$T/login.pem" -outform DER) \
    || fail "ukey cert export, the way named instead, does not give the certificate"

check_no_pin_leaks
finish
