# tests/service/lib.sh: service mode (docs/service-mode.md) with real uids.
#
# Environment (ctest sets them, see CMakeLists.txt): UKEYD, UKEY,
# UKEY_MODULE as for tests/daemon; SVCCLIENT (svcclient.cpp), SPY_PATH
# (ukey-test-spy), FAKECARD_MODULE (ukey-test-fakecard).
#
# service_setup makes, as root, the world a service runs in: $T readable by
# all (the clients run as other uids), a service user SVC_UID that owns the
# PIN counters ($T/state) and the SoftHSM2 token store ($T/tokens), both
# 0700; a Key "Alice" made with `ukey init` behind the spy (so that every
# C_Login that reaches SoftHSM2 is a line in $T/spy.log), usable by uids
# USER_A and USER_B; the fakecard, usable by USER_C only; USER_D may use
# nothing. ukeyd then runs as the service user and serves them on
# $PKCS11_SOCK.
. "$(dirname "${BASH_SOURCE[0]}")/../daemon/lib.sh"
TEST_NAME=service.$(basename "$0" .sh)
SERVICE_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

: "${SVCCLIENT:?SVCCLIENT must name tests/service/svcclient}"
: "${SPY_PATH:?SPY_PATH must name ukey-test-spy}"
: "${FAKECARD_MODULE:?FAKECARD_MODULE must name ukey-test-fakecard}"
P11_CLIENT=${P11_CLIENT:-$(pkg-config --variable=p11_module_path p11-kit-1 2>/dev/null)/p11-kit-client.so}

SVC_UID=7100
USER_A=7201 USER_B=7202 USER_C=7203 USER_D=7299

need_service() {
    [[ $(id -u) == 0 ]] || skip "needs root (real uids with setpriv)"
    need setpriv
    [[ -r $P11_CLIENT ]] || skip "p11-kit-client.so not found ($P11_CLIENT)"
}

service_setup() {
    need_service
    daemon_setup
    chmod 0755 "$T" "$T/run"
    chmod 0644 "$T/softhsm2.conf"
    : >"$T/spy.log"
    printf 'fakecard 1 user_left=3 so_left=3 user_pin=card-user-2468 so_pin=card-so-13579\n' >"$T/fakecard.state"
    chown "$SVC_UID:$SVC_UID" "$T/spy.log" "$T/fakecard.state"
    PKCS11_SOCK=$T/run/pkcs11
    cat >"$T/ukey.conf" <<EOF
state_dir = "$T/state"

[log]
level = "info"
stderr = true
syslog = false

[[backend]]
name = "soft"
module = "$SPY_PATH"
users = ["$USER_A", "$USER_B"]

[[backend]]
name = "card"
module = "$FAKECARD_MODULE"
pin_counter = "token"
users = ["$USER_C"]

[daemon]
socket = "$T/run/ukeyd.sock"
pcsc = false
rescan_interval = 5

[service]
enabled = true
socket = "$PKCS11_SOCK"
user = "$SVC_UID"
EOF
    chmod 0644 "$T/ukey.conf"
    export SPY_MODULE=$SOFTHSM_MODULE SPY_LOG=$T/spy.log FAKECARD_STATE=$T/fakecard.state
    SO=So-4nB8v2Qe U1=Us-6tR3k9Wd U2=Us-2hM7c5Jx BAD=Wrong-000000
    pin "$SO"; pin "$U1"; pin "$U2"; pin "$BAD"
    # The Key is made by root directly (not through the service), then
    # handed to the service user with its state.
    uk init --label Alice --so-pin-fd 3 --pin-fd 4 3<<<"$SO" 4<<<"$U1"
    [[ $RC == 0 ]] || { show "ukey init" "$OUT$ERR"; fail "ukey init of Alice failed"; }
    chown -R "$SVC_UID:$SVC_UID" "$T/tokens" "$T/state" "$T/run" "$T/hooks"
    : >"$T/spy.log"
    # ukeyd runs as the service user, as ukeyd.service does (User=).
    UKEYD_WRAP=(setpriv --reuid="$SVC_UID" --regid="$SVC_UID" --clear-groups --)
}

# as UID svcclient-ARGS...: svcclient as UID (its own group, no others),
# with nothing of this test's environment but the service's address.
as() {
    local uid=$1; shift
    setpriv --reuid="$uid" --regid="$uid" --clear-groups -- \
        env -i P11_KIT_SERVER_ADDRESS="unix:path=$PKCS11_SOCK" \
        timeout -k 2 60 "$SVCCLIENT" "$P11_CLIENT" "$@"
}

# logins_reaching_backend: the C_Login calls SoftHSM2 got (the spy's lines).
logins_reaching_backend() { grep -c '^login' "$T/spy.log" || true; }

service_answers() { [[ -S $PKCS11_SOCK ]]; }
service_start() {
    daemon_start
    wait_for "ukeyd serving on $PKCS11_SOCK" "$DAEMON_WAIT" service_answers
}
