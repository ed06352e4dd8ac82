#!/usr/bin/env bash
# `cd somewhere && ukey list` must not load somewhere's library: a module
# path in the config is absolute, or a bare name looked up in the system's
# PKCS#11 module folder only, never the current folder. A hostile
# lib/evil.so and evil.so in the current folder never run (marker files);
# dlopen itself, given the same relative path, would have loaded them.
. "$(dirname "$0")/../cli/lib.sh"
. "$(dirname "$0")/lib.sh"
: "${SYSTEM_MODULE_DIR:?SYSTEM_MODULE_DIR must name the system PKCS#11 module folder}"
cli_setup

W=$T/work
mkdir -p "$W/lib"
cp "$EVIL" "$W/lib/evil.so"
cp "$EVIL" "$W/evil.so"
conf_with_module() { ukey_conf "$T/state" "$1" b "" warning >"$UKEY_CONF"; }
# in_work ARGS...: uk ARGS (sets OUT, ERR, RC) with the current folder $W.
in_work() { pushd "$W" >/dev/null; uk "$@"; popd >/dev/null; }

step "the hazard: dlopen of a relative path loads from the current folder"
(cd "$W" && "$P11PROBE" lib/evil.so >/dev/null 2>&1) || true
marker_present "$W/lib/evil.so" "dlopen(\"lib/evil.so\") in $W"

step "a relative module path is a config error"
conf_with_module "lib/evil.so"
in_work list
[[ $RC -ne 0 ]] || fail "ukey list with module = \"lib/evil.so\" should fail"
marker_absent "$W/lib/evil.so" "ukey list with module = \"lib/evil.so\""
assert_contains "$ERR" "module must be an absolute path, or a bare file name in $SYSTEM_MODULE_DIR, not 'lib/evil.so'" "stderr"
conf_with_module "./evil.so"
in_work list
marker_absent "$W/evil.so" "ukey list with module = \"./evil.so\""
assert_contains "$ERR" "module must be an absolute path" "stderr"

step "a bare name is looked up in $SYSTEM_MODULE_DIR only"
[[ ! -e $SYSTEM_MODULE_DIR/evil.so ]] || fail "$SYSTEM_MODULE_DIR/evil.so exists: remove it"
conf_with_module "evil.so"
in_work list
[[ $RC -ne 0 ]] || fail "ukey list with module = \"evil.so\" should fail"
marker_absent "$W/evil.so" "ukey list with module = \"evil.so\""
assert_contains "$ERR" "$SYSTEM_MODULE_DIR/evil.so" "stderr"
if [[ -r $SYSTEM_MODULE_DIR/p11-kit-trust.so ]]; then
    # A real module of that folder, by its bare name, with a hostile
    # namesake in the current folder.
    cp "$EVIL" "$W/p11-kit-trust.so"
    conf_with_module "p11-kit-trust.so"
    in_work --json list
    marker_absent "$W/p11-kit-trust.so" "ukey list with module = \"p11-kit-trust.so\""
    [[ $RC -eq 0 ]] || { show stderr "$ERR"; fail "ukey list with module = \"p11-kit-trust.so\" (rc $RC)"; }
else
    log "($SYSTEM_MODULE_DIR/p11-kit-trust.so not installed: the bare name of a real module not tried)"
fi
finish
