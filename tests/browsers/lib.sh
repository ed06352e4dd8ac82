# tests/browsers/lib.sh: real browsers (Debian's chromium and firefox-esr)
# under Xvfb logging into a local TLS server with a Key's certificate, the
# PIN typed into the browser's own dialog with xdotool. What was learnt
# driving them is in docs/testing.md ("Real browsers").
#
# On top of tests/cli/lib.sh (a private SoftHSM2 token folder behind ukey,
# `uk`, init_key, the test CA): the test runs in a private mount namespace
# where p11-kit's module folders and /etc/chromium are the test's own, so
# `ukey browser enable --auto-select` writes Chromium's policy there and
# nothing of the machine's changes.
. "$(dirname "${BASH_SOURCE[0]}")/../cli/lib.sh"
TEST_NAME=browsers.$(basename "$0" .sh)

# Not skips: in .ci/run a missing browser must fail (scripts/setup.sh
# installs them).
for c in Xvfb xdotool xprop openssl certutil jq; do
    command -v "$c" >/dev/null || fail "$c is not installed (scripts/setup.sh installs it)"
done
[[ $EUID -eq 0 ]] || fail "needs root: Chromium's policy folder is mounted over in a private namespace"
private_p11kit "$@"
[[ ${UKEY_P11KIT_PRIVATE:-} == 1 ]] || fail "no private mount namespace (unshare --mount)"
cli_setup

# Waits are for conditions; a busy machine makes a browser slow to start.
BROWSER_WAIT=${UKEY_BROWSER_WAIT:-300}

# Chromium's policies: a copy of /etc/chromium mounted over it.
if [[ -d /etc/chromium ]]; then
    mkdir -p "$T/etc-chromium"
    cp -a /etc/chromium/. "$T/etc-chromium/"
    mkdir -p "$T/etc-chromium/policies/managed"
    mount --bind "$T/etc-chromium" /etc/chromium || fail "cannot mount over /etc/chromium"
fi
# The browsers run as root here but read files as any program would.
chmod 0755 "$T"

# bg NAME CMD...: CMD in its own session (its process group is killed at
# the end), output in $T/NAME.log; sets BGPID.
BG_GROUPS=()
bg() {
    local name=$1; shift
    setsid "$@" >"$T/$name.log" 2>&1 </dev/null &
    BGPID=$!
    BG_GROUPS+=("$BGPID")
}
kill_groups() {
    local p
    for p in "${BG_GROUPS[@]}"; do kill -TERM -- "-$p" 2>/dev/null || true; done
    sleep 1
    for p in "${BG_GROUPS[@]}"; do kill -KILL -- "-$p" 2>/dev/null || true; done
}
on_cleanup kill_groups

# --- certificates --------------------------------------------------------------

# second_ca NAME CN: another throwaway CA in $T/NAME (ca.key, ca.pem).
second_ca() {
    mkdir -p "$T/$1"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/$1/ca.key" \
        -out "$T/$1/ca.pem" -days 30 -subj "/O=ukey tests/CN=$2" \
        -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null \
        || fail "cannot make the CA $2"
}
# sign_with CA_DIR CSR OUT EXTFILE
sign_with() {
    openssl x509 -req -in "$2" -CA "$1/ca.pem" -CAkey "$1/ca.key" -CAcreateserial -days 20 -sha256 \
        -extfile "$4" -out "$3" 2>/dev/null || fail "cannot sign $2"
}
printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n' >"$T/client.ext"
printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1\n' \
    >"$T/server.ext"

# key_with_cert LABEL CN CA_DIR PIN: the only uninitialised SoftHSM2 token
# becomes the Key LABEL with an EC key and a certificate CN issued by CA_DIR,
# all through ukey.
key_with_cert() {
    local label=$1 cn=$2 ca=$3 user=$4 so
    so=$(openssl rand -hex 6)
    init_key "$label" "$so" "$user"
    ok key generate "$label" --type ec-p256 --id 31 --label login --pin-fd 3 3<<<"$user"
    ok csr "$label" --key 31 --subject "/O=ukey tests/CN=$cn" --out "$T/$label.csr" --pin-fd 3 3<<<"$user"
    sign_with "$ca" "$T/$label.csr" "$T/$label.pem" "$T/client.ext"
    ok cert write "$label" --file "$T/$label.pem" --label login --pin-fd 3 3<<<"$user"
}

# --- the server ----------------------------------------------------------------

# tls_server NAME CLIENT_CAS: `openssl s_server` on 127.0.0.1 (a free port)
# requiring a client certificate from CLIENT_CAS, its certificate from the
# test CA ($T/ca, which the browsers are made to trust); its log $T/NAME.log
# records each client certificate it verified. Sets URL.
tls_server() {
    make_ca
    if [[ ! -f $T/server.pem ]]; then
        openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/server.key" \
            -subj "/CN=127.0.0.1" -out "$T/server.csr" 2>/dev/null || fail "server key"
        sign_with "$T/ca" "$T/server.csr" "$T/server.pem" "$T/server.ext"
    fi
    bg "$1" openssl s_server -accept 127.0.0.1:0 -Verify 1 -CAfile "$2" -cert "$T/server.pem" \
        -key "$T/server.key" -www
    accepting() { grep -q '^ACCEPT' "$T/$1.log"; }
    wait_until 60 accepting "$1" || fail "s_server did not start: $(cat "$T/$1.log")"
    URL=https://127.0.0.1:$(sed -n 's/^ACCEPT .*:\([0-9][0-9]*\)$/\1/p' "$T/$1.log" | head -n1)/
    log "$1: $URL"
}
# client_seen SERVER CN: the server verified a client certificate of CN.
client_seen() { grep -q "depth=0 .*CN = $2\$" "$T/$1.log"; }

# --- the display and the PIN dialog ------------------------------------------------

start_display() {
    exec 8>"$T/displayfd"
    bg xvfb Xvfb -displayfd 8 -screen 0 1280x1024x24 -nolisten tcp
    exec 8>&-
    display_known() { [[ -s $T/displayfd ]]; }
    wait_until 60 display_known || fail "Xvfb did not start: $(cat "$T/xvfb.log")"
    DISPLAY=:$(head -n1 "$T/displayfd")
    export DISPLAY
}

# window_named REGEX: the id of a window whose name matches REGEX.
window_named() {
    local w
    for w in $(xdotool search --name "$1" 2>/dev/null); do
        xdotool getwindowname "$w" >/dev/null 2>&1 && { printf '%s\n' "$w"; return 0; }
    done
    return 1
}

# login_through_browser SERVER CN DIALOG_REGEX PINFILE: answers every PIN
# dialog of the browser (BPID) with the PIN in PINFILE (typed from the file:
# never on a command line) until SERVER verified CN's certificate. Neither
# browser names the Key in its dialog, so the Keys of one test share a PIN.
login_through_browser() {
    local server=$1 cn=$2 re=$3 pinfile=$4 deadline=$((SECONDS + BROWSER_WAIT)) w n=0
    while ! client_seen "$server" "$cn"; do
        ((SECONDS < deadline)) || fail "$server saw no certificate of '$cn' after ${BROWSER_WAIT}s ($n PIN dialogs answered; logs in $T)"
        kill -0 "$BPID" 2>/dev/null || fail "the browser exited (log: $(tail -n 20 "$T/browser.log"))"
        if w=$(window_named "$re"); then
            n=$((n + 1))
            xdotool windowfocus "$w" 2>/dev/null || true
            focused() { [[ $(xdotool getwindowfocus 2>/dev/null) == "$w" ]]; }
            wait_until 10 focused || log "the dialog did not take the focus; typing anyway"
            xdotool type --delay 60 --file "$pinfile"
            xdotool key Return
            closed() { ! xdotool getwindowname "$w" >/dev/null 2>&1; }
            wait_until 60 closed || log "PIN dialog $w still open 60 s after the PIN"
        fi
        sleep 0.5
    done
    log "$server verified the certificate of '$cn' ($n PIN dialog(s) answered)"
}

# stop_browser: ends the browser started last (its process group).
stop_browser() {
    kill -TERM -- "-$BPID" 2>/dev/null || true
    gone() { ! kill -0 "$BPID" 2>/dev/null; }
    wait_until 60 gone || kill -KILL -- "-$BPID" 2>/dev/null || true
}
