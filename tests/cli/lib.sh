# tests/cli/lib.sh: shared helpers for the tests of the `ukey` admin CLI.
#
# Source it from a test script:   . "$(dirname "$0")/lib.sh"
#
# Environment (ctest sets the first two, see CMakeLists.txt):
#   UKEY             the ukey binary under test (required)
#   UKEY_MODULE      libukey-pkcs11.so, which ukey loads (required)
#   UKEY_SANITIZED   1 when the module was built with ASan+UBSan: client tools
#                    that load it (pkcs11-tool, openssl) get the sanitizer
#                    runtimes preloaded, see ukc()
#   UKEY_TEST_KEEP   1 to keep the private temp dir (its path is printed),
#                    "fail" to keep it only when the test fails
#   UKEY_TEST_TIMEOUT  seconds any single command may take (default 60)
#
# cli_setup creates a private environment: $T (0700, removed on exit) with its
# own softhsm2.conf, token folder, ukey.conf and state folder; SoftHSM2 then
# shows one empty, uninitialised token. Every ukey run goes through uk(),
# which records its command line and output in $T/transcript: at the end,
# check_no_pin_leaks greps that transcript and the state folder for every PIN
# registered with pin().

TEST_NAME=cli.$(basename "$0" .sh)
# shellcheck source=../lib/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"

: "${UKEY:?UKEY must name the ukey binary under test}"
: "${UKEY_MODULE:?UKEY_MODULE must name libukey-pkcs11.so}"
export UKEY_MODULE
CLI_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# soft ASSERTION ARGS...: runs one assertion (a function above) in a subshell;
# if it fails, the failure is recorded and the test goes on, so one bug does
# not hide the checks after it. finish() fails the test if any was recorded.
SOFT_FAILS=()
soft() {
    if ! ("$@"); then
        SOFT_FAILS+=("$1: ${*: -1}")
    fi
}
finish() {
    check_no_pin_leaks
    if ((${#SOFT_FAILS[@]} > 0)); then
        local f
        for f in "${SOFT_FAILS[@]}"; do log "failed: $f"; done
        fail "${#SOFT_FAILS[@]} check(s) failed (FAIL lines above)"
    fi
}

# assert_clean_bytes FILE WHAT VERB: the bytes of FILE are what a terminal or
# a log may safely get (hostile-input tests); VERB ends the failure message:
# "a control character VERB".
assert_clean_bytes() {
    local f=$1 what=$2 verb=$3 bad
    [[ -e $f ]] || fail "$what: $f does not exist"
    if bad=$(LC_ALL=C grep -naP '[\x00-\x09\x0b-\x1f\x7f]' "$f"); then
        show "$what" "$bad"; fail "$what: a control character $verb"
    fi
    if bad=$(LC_ALL=C grep -naP '\xc2[\x80-\x9f]' "$f"); then
        show "$what" "$bad"; fail "$what: a C1 control $verb"
    fi
    if bad=$(LC_ALL=C grep -naP '\xe2\x80[\xa8-\xae]|\xe2\x81[\xa6-\xa9]' "$f"); then
        show "$what" "$bad"; fail "$what: a bidi override or line separator $verb"
    fi
    if ! iconv -f UTF-8 -t UTF-8 "$f" >/dev/null 2>&1; then
        show "$what" "$(od -c "$f" | head -n 20)"; fail "$what: invalid UTF-8 $verb"
    fi
    if bad=$(grep -na '^ *ukey: fake' "$f"); then
        show "$what" "$bad"; fail "$what: a value forged a line of its own"
    fi
}

# --- running ukey -----------------------------------------------------------

# uk ARGS...: runs ukey with a time limit, in a new session (setsid), so it
# never has a controlling terminal: confirmations and PIN prompts behave as in
# a script, even when ctest runs from a terminal. stdin is /dev/null unless
# UK_STDIN names a file. Sets OUT (stdout), ERR (stderr) and RC (exit code);
# never fails by itself. Descriptors 3-9 given by the caller are inherited,
# e.g.   uk pin verify --pin-fd 3 3<<<"$PIN"
# UK_AS, when set, is a command ukey runs under (another user: pin/no_home.sh)
# and UK_WHO what the transcript calls it.
OUT='' ERR='' RC=0
UK_AS=() UK_WHO=
uk() {
    RC=0
    setsid -w "${UK_AS[@]}" timeout --kill-after=5 "$UKEY_TEST_TIMEOUT" "$UKEY" "$@" \
        <"${UK_STDIN:-/dev/null}" >"$T/uk.out" 2>"$T/uk.err" || RC=$?
    OUT=$(<"$T/uk.out")
    ERR=$(<"$T/uk.err")
    {
        printf '$ %sukey %s\n' "$UK_WHO" "$*"
        cat "$T/uk.out" "$T/uk.err"
        printf '(exit %s)\n' "$RC"
    } >>"$T/transcript"
    if [[ $RC -eq 124 || $RC -eq 137 ]]; then
        show "stdout" "$OUT"; show "stderr" "$ERR"
        fail "ukey $* timed out after ${UKEY_TEST_TIMEOUT}s"
    fi
    return 0
}

# expect_rc N [WHAT]: the last uk() exited with N.
expect_rc() {
    if [[ $RC -ne $1 ]]; then
        show "stdout" "$OUT"; show "stderr" "$ERR"
        fail "${2:-ukey}: expected exit code $1, got $RC"
    fi
}

# ok ARGS...: uk ARGS and expect exit 0.
ok() { uk "$@"; expect_rc 0 "ukey $*"; }

# jerror CODE [WHAT]: the last uk --json run failed with exit CODE and printed
# {"error": {"code": CODE, "message": "...", "ckr": ...}} on stdout.
jerror() {
    expect_rc "$1" "${2:-ukey}"
    json_ok "$OUT" "${2:-ukey} --json error"
    jkeys "$OUT" '.' "error" "${2:-}"
    jkeys "$OUT" '.error' "code message ckr" "${2:-}"
    jeq "$OUT" '.error.code' "$1" "${2:-}"
    jtype "$OUT" '.error.message' string "${2:-}"
    # The message on stdout is the sentence on stderr.
    assert_contains "$ERR" "ukey: $(jr "$OUT" '.error.message' | head -n1)" "${2:-} stderr"
}

# The documented fields of one Key (docs/cli.md, "Key object").
KEY_FIELDS="slot backend reader label manufacturer model serial initialized pin_min_length pin_max_length pin"
KEY_FIELDS_CERTS="$KEY_FIELDS certificates nearest_expiry"
PIN_FIELDS="counted_by user so must_change state_damaged"
TRIES_FIELDS="tries_left max_tries locked"

# --- PINs ------------------------------------------------------------------

PINS=()
# pin VALUE: registers a PIN the test uses, for check_no_pin_leaks. Give tests
# PINs that cannot occur by chance in output (letters and digits mixed).
pin() { PINS+=("$1"); }

# new_pins NAME...: sets each variable NAME to a PIN of its own and registers
# it (pin). A PIN is the variable's name, the test's, and 8 hex digits of
# their hash: distinct across tests, the same in every run, and nothing
# ukey would print by chance.
new_pins() {
    local name test value
    test=$(basename "$0" .sh)
    for name in "$@"; do
        value="$name-$test-$(printf '%s/%s' "$test" "$name" | sha256sum | cut -c1-8)"
        printf -v "$name" '%s' "$value"
        pin "$value"
    done
}

# check_no_pin_leaks: no registered PIN in anything ukey printed (stdout,
# stderr, --json) during the whole test, nor in any file of the state folder.
check_no_pin_leaks() {
    local p
    [[ -s $T/transcript ]] || fail "empty transcript: nothing was recorded"
    for p in "${PINS[@]}"; do
        if grep -qF -- "$p" "$T/transcript"; then
            grep -nF -- "$p" "$T/transcript" >&2
            fail "a PIN appears in ukey's output (lines above, from $T/transcript)"
        fi
        if grep -rqF -- "$p" "$T/state"; then
            fail "a PIN appears in the state folder: $(grep -rlF -- "$p" "$T/state" | tr '\n' ' ')"
        fi
    done
    log "no PIN (${#PINS[@]} checked) in $(wc -l <"$T/transcript") lines of output nor in the state folder"
}

# --- environment -----------------------------------------------------------

# need_ukey_env [COMMAND...]: what running ukey against SoftHSM2 needs, and
# the COMMANDs (skip if one is missing). jq checks every --json field: a
# missing jq is a failure, not a skip (scripts/setup.sh installs it).
need_ukey_env() {
    command -v jq >/dev/null 2>&1 || fail "jq is not installed: run scripts/setup.sh (or apt-get install jq)"
    need softhsm2-util timeout setsid "$@"
    [[ -x $UKEY ]] || fail "ukey binary $UKEY not found"
    [[ -r $UKEY_MODULE ]] || fail "module $UKEY_MODULE not found"
    [[ -r $SOFTHSM_MODULE ]] || skip "SoftHSM2 ($SOFTHSM_MODULE) not installed"
}

# private_p11kit "$@": re-runs the test script in a private mount namespace
# (a user namespace too when not root) where p11-kit's module folders are
# empty folders of the test's own: this machine's p11-kit registrations
# (SoftHSM2's own .module file, whose library is the tests' backend) stay out
# of `ukey doctor`'s sight, and a test registers modules by writing
# $P11KIT_MODULES/NAME.module (seen as /usr/share/p11-kit/modules). Only
# mount namespaces do it: p11-kit ignores user .module files for root.
# Without one, the test goes on when nothing here registers SoftHSM2
# (P11KIT_MODULES is then empty), else it is skipped. Call it first.
P11KIT_MODULES=
private_p11kit() {
    [[ -z ${UKEY_P11KIT_PRIVATE:-} ]] || return 0
    export UKEY_P11KIT_PRIVATE=1
    if [[ $EUID -eq 0 ]] && unshare --mount -- true 2>/dev/null; then
        exec unshare --mount --propagation private -- bash "$0" "$@"
    elif unshare --user --map-root-user --mount -- true 2>/dev/null; then
        exec unshare --user --map-root-user --mount --propagation private -- bash "$0" "$@"
    fi
    UKEY_P11KIT_PRIVATE=none
    if grep -qsl softhsm /usr/share/p11-kit/modules/* /etc/pkcs11/modules/*; then
        skip "SoftHSM2 is registered with p11-kit here, and there is no private mount namespace (unshare --mount) to leave it out"
    fi
}
# In the namespace of private_p11kit: the empty folders mounted (cli_setup).
p11kit_mount() {
    [[ ${UKEY_P11KIT_PRIVATE:-} == 1 && -d /usr/share/p11-kit/modules ]] || return 0
    P11KIT_MODULES=$T/p11-kit/modules
    mkdir -p "$P11KIT_MODULES" "$T/p11-kit/etc"
    mount --bind "$P11KIT_MODULES" /usr/share/p11-kit/modules || fail "cannot mount over /usr/share/p11-kit/modules"
    # The administrator's folder, which `ukey backend` writes: made (empty,
    # as p11-kit reads it anyway) where it does not exist, so that the
    # test's own can be mounted over it.
    [[ -d /etc/pkcs11/modules || $EUID -ne 0 ]] || (umask 022 && mkdir -p /etc/pkcs11/modules)
    P11KIT_ETC=
    if [[ -d /etc/pkcs11/modules ]]; then
        mount --bind "$T/p11-kit/etc" /etc/pkcs11/modules || fail "cannot mount over /etc/pkcs11/modules"
        P11KIT_ETC=$T/p11-kit/etc
    fi
}

# cli_setup [EXTRA_UKEY_CONF]: the private environment; EXTRA_UKEY_CONF is
# appended to ukey.conf (e.g. a [pin] section).
cli_setup() {
    need_ukey_env pgrep

    test_dir_setup
    mkdir -m 0700 "$T/tokens" "$T/state" "$T/tmp"
    softhsm_conf "$T/softhsm2.conf" "$T/tokens"
    { ukey_conf "$T/state" "$SOFTHSM_MODULE" softhsm ukey warning; printf '%s\n' "${1:-}"; } >"$T/ukey.conf"
    export SOFTHSM2_CONF="$T/softhsm2.conf" UKEY_CONF="$T/ukey.conf"
    export HOME="$T" TMPDIR="$T/tmp"
    unset UKEY_LOG_LEVEL OPENSSL_CONF
    : >"$T/transcript"
    p11kit_mount
    log "env in $T (ukey $UKEY, module $UKEY_MODULE)"
}

# init_key LABEL SO_PIN USER_PIN [ukey init options...]: `ukey init` of the
# (only) uninitialised token through ukey, PINs on descriptors 3 and 4.
# Sets SERIAL and SLOT of the new Key.
init_key() {
    local label=$1 so=$2 user=$3; shift 3
    pin "$so"; pin "$user"
    uk --json init --label "$label" --so-pin-fd 3 --pin-fd 4 "$@" 3<<<"$so" 4<<<"$user"
    expect_rc 0 "ukey init --label $label"
    json_ok "$OUT" "ukey --json init"
    jeq "$OUT" '.initialized' true "init"
    jeq "$OUT" '.key.label' "\"$label\"" "init"
    SERIAL=$(jr "$OUT" '.key.serial')
    SLOT=$(jr "$OUT" '.key.slot')
}

# --- other tools -----------------------------------------------------------

# p11 ARGS...: pkcs11-tool through the module under test (the test's own
# setup and cross-checks, not ukey): prints its output, fails the test if it
# fails. p11_direct: the same straight on SoftHSM2, around ukey.
p11() {
    local out rc=0
    out=$(ukc pkcs11-tool --module "$UKEY_MODULE" "$@" 2>&1) || rc=$?
    [[ $rc -eq 0 ]] || { show "pkcs11-tool $*" "$out"; fail "pkcs11-tool exited with $rc"; }
    printf '%s\n' "$out"
}
p11_direct() {
    local out rc=0
    out=$(timeout --kill-after=5 "$UKEY_TEST_TIMEOUT" pkcs11-tool --module "$SOFTHSM_MODULE" "$@" 2>&1) || rc=$?
    [[ $rc -eq 0 ]] || { show "pkcs11-tool (SoftHSM2) $*" "$out"; fail "pkcs11-tool exited with $rc"; }
    printf '%s\n' "$out"
}

# make_ca: a throwaway EC P-256 CA in $T/ca (ca.key, ca.pem) that can issue
# certificates with any validity period (openssl ca).
make_ca() {
    [[ -f $T/ca/ca.pem ]] && return 0
    need openssl
    mkdir -m 0700 "$T/ca"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$T/ca/ca.key" -out "$T/ca/ca.pem" -days 30 \
        -subj "/O=ukey tests/CN=ukey test CA" \
        -addext basicConstraints=critical,CA:TRUE \
        -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null || fail "cannot create the test CA"
    : >"$T/ca/index.txt"
    echo 1000 >"$T/ca/serial"
    {
        echo "[ca]"
        echo "default_ca = test_ca"
        echo "[test_ca]"
        echo "dir = $T/ca"
        echo "database = $T/ca/index.txt"
        echo "new_certs_dir = $T/ca"
        echo "serial = $T/ca/serial"
        echo "certificate = $T/ca/ca.pem"
        echo "private_key = $T/ca/ca.key"
        echo "default_md = sha256"
        echo "policy = policy_any"
        echo "unique_subject = no"
        echo "copy_extensions = copy"
        echo "[policy_any]"
        echo "commonName = supplied"
        echo "organizationName = optional"
        echo "organizationalUnitName = optional"
        echo "[client]"
        echo "basicConstraints = CA:FALSE"
        echo "keyUsage = critical,digitalSignature"
        echo "extendedKeyUsage = clientAuth"
        echo "subjectKeyIdentifier = hash"
        echo "authorityKeyIdentifier = keyid"
    } >"$T/ca/ca.cnf"
}

# issue_cert CSR OUT_PEM START END: the test CA signs CSR (PEM) with the
# given validity: START and END as YYYYMMDDHHMMSSZ, or START "now" and END a
# number of days. The certificate has the extensions of the CSR (subject
# alternative names...), digitalSignature, clientAuth, and the SKI (SHA-1 of
# the public key).
issue_cert() {
    local csr=$1 out=$2 start=$3 end=$4 dates=()
    make_ca
    if [[ $start == now ]]; then dates=(-days "$end"); else dates=(-startdate "$start" -enddate "$end"); fi
    openssl ca -config "$T/ca/ca.cnf" -batch -notext -preserveDN -extensions client \
        -in "$csr" -out "$out" "${dates[@]}" >"$T/ca/last.log" 2>&1 \
        || { cat "$T/ca/last.log" >&2; fail "the test CA cannot issue a certificate for $csr"; }
}

# soft_cert CN OUT_PEM START END: a certificate for a new software key
# (for certificate objects whose key does not matter).
soft_cert() {
    local cn=$1 out=$2
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$out.key" \
        -subj "/O=ukey tests/CN=$cn" -out "$out.csr" 2>/dev/null || fail "openssl req failed"
    issue_cert "$out.csr" "$out" "$3" "$4"
}

# iso_not_after PEM: the certificate's notAfter as 2026-11-21T09:30:00Z.
iso_not_after() {
    date -u -d "$(openssl x509 -in "$1" -noout -enddate | cut -d= -f2)" +%Y-%m-%dT%H:%M:%SZ
}
# days_left PEM: whole days from now to notAfter as ukey counts them:
# rounded up while valid, minus the whole days since once expired.
days_left() {
    local end now
    end=$(date -u -d "$(openssl x509 -in "$1" -noout -enddate | cut -d= -f2)" +%s)
    now=$(date +%s)
    if ((end > now)); then echo $(((end - now + 86399) / 86400)); else echo $((-((now - end) / 86400))); fi
}

# key_in JSON LABEL: the one Key labelled LABEL in `ukey --json list` output
# (fails unless exactly one); key_at JSON SLOT: the one with that slot.
key_in() {
    local n
    n=$(jq --arg l "$2" '[.keys[] | select(.label == $l)] | length' <<<"$1")
    [[ $n == 1 ]] || { show json "$1"; fail "expected one Key labelled '$2' in the list, found $n"; }
    jq -c --arg l "$2" '.keys[] | select(.label == $l)' <<<"$1"
}
key_at() {
    local n
    n=$(jq --argjson s "$2" '[.keys[] | select(.slot == $s)] | length' <<<"$1")
    [[ $n == 1 ]] || { show json "$1"; fail "expected one Key in slot $2 in the list, found $n"; }
    jq -c --argjson s "$2" '.keys[] | select(.slot == $s)' <<<"$1"
}

# uk_runs_nss_tools: the next uk calls run NSS tools (modutil, certutil)
# that load ukey's module; in the sanitized tree those need the sanitizer
# runtimes first, as every client does (ukc). UK_AS=() ends it.
uk_runs_nss_tools() {
    if [[ -n ${SAN_PRELOAD:-} ]]; then
        UK_AS=(env LD_PRELOAD="$SAN_PRELOAD" ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0:suppressions=$CLIENT_ASAN_SUPP")
    fi
}

# nss_lists DB TOKEN:LABEL yes|no: whether NSS (certutil -L -h all, as a
# browser would) lists that certificate of the Key in the database DB.
nss_lists() {
    local out
    out=$(ukc certutil -L -d "sql:$1" -h all </dev/null 2>/dev/null) || true
    if [[ $3 == yes ]]; then
        assert_contains "$out" "$2" "certutil -L -d $1 lists the Key's certificate"
    elif grep -qF "$2" <<<"$out"; then
        show "certutil -L -d $1" "$out"; fail "NSS still lists the Key's certificate $2 in $1"
    fi
}
