#!/usr/bin/env bash
# ukey backend list|add|hide|remove against a real config and p11-kit's own
# module folders (private: lib.sh, private_p11kit): SoftHSM2, the backend,
# registered with p11-kit as its package does, is shown twice to
# p11-kit-proxy (pkcs11-tool through it sees the Key); `hide` and `add` hide
# each registration of a backend's module (a second one too) so that
# p11-kit-proxy sees nothing of it; an administrator's own override keeps
# its text; `remove` brings the registrations back. The config keeps its
# comments; bad names, modules and the last backend are refused with exit 12
# and the config untouched. Text and --json.
. "$(dirname "$0")/lib.sh"
private_p11kit "$@"
cli_setup
[[ -n $P11KIT_MODULES && -n $P11KIT_ETC ]] || skip "no private p11-kit module folders (unshare --mount, as root)"
: "${FAKECARD_MODULE:?FAKECARD_MODULE must name libukey-test-fakecard.so}"
export FAKECARD_STATE=$T/fakecard.state

new_pins SO U1
init_key alice "$SO" "$U1"
LIB=$(readlink -f "$SOFTHSM_MODULE")
PROXY=/usr/lib/x86_64-linux-gnu/p11-kit-proxy.so
[[ -r $PROXY ]] || skip "p11-kit-proxy.so is not installed"
# proxy_sees yes|no: whether p11-kit-proxy, as an application loads it,
# shows the Key (the condition itself, not ukey's view of it).
proxy_sees() {
    local out
    out=$(ukc pkcs11-tool --module "$PROXY" -L 2>&1) || true
    if [[ $1 == yes ]]; then
        assert_contains "$out" "token label        : alice" "p11-kit-proxy shows the Key"
    elif grep -qF "token label        : alice" <<<"$out"; then
        show "pkcs11-tool --module $PROXY -L" "$out"; fail "p11-kit-proxy still shows the Key"
    fi
}
# A comment of the administrator's, which every change keeps.
{ printf '# the helpdesk'"'"'s config, keep this line\n'; cat "$T/ukey.conf"; } >"$T/c" && mv "$T/c" "$T/ukey.conf"
chmod 0640 "$T/ukey.conf"

step "SoftHSM2 registered with p11-kit as its package does: list names it, applications see the Key"
printf '# as Debian'"'"'s softhsm2 package writes it\nmodule: %s\n' "$LIB" >"$P11KIT_MODULES/softhsm2.module"
proxy_sees yes
ok --json backend list
json_ok "$OUT" "backend list"
jkeys "$OUT" '.' "config backends"
jeq "$OUT" '.config' "\"$T/ukey.conf\""
jeq "$OUT" '.backends | length' 1
jkeys "$OUT" '.backends[0]' "name module module_exists pin_counter optional removable fixes p11kit"
jeq "$OUT" '.backends[0] | [.name, .module, .module_exists, .pin_counter, .optional, .removable, .fixes]' \
    "[\"softhsm\",\"$SOFTHSM_MODULE\",true,\"ukey\",false,true,true]"
jeq "$OUT" '.backends[0].p11kit' "[{\"file\":\"/usr/share/p11-kit/modules/softhsm2.module\",\"hidden_by_ukey\":false,\"module\":\"$LIB\",\"name\":\"softhsm2\",\"seen_by_applications\":true}]"
ok backend list
assert_contains "$OUT" "softhsm: $SOFTHSM_MODULE, ukey counts PIN tries" "list text"
assert_contains "$OUT" "  registered with p11-kit as 'softhsm2' (/usr/share/p11-kit/modules/softhsm2.module): programs using p11-kit-proxy see its Keys a second time, without ukey's PIN lockout (\`ukey backend hide\` hides it)" "list text"

step "hide: an override in /etc/pkcs11/modules (readable by all under root's umask 077); p11-kit-proxy no longer sees the Key"
umask 077
ok --json backend hide softhsm
umask 022
assert_eq "$(stat -c %a "$P11KIT_ETC/softhsm2.module")" 644 "override readable by every user's p11-kit"
jeq "$OUT" '.' "{\"name\":\"softhsm\",\"p11kit_hidden\":[{\"file\":\"/etc/pkcs11/modules/softhsm2.module\",\"name\":\"softhsm2\"}]}"
[[ -f $P11KIT_ETC/softhsm2.module ]] || fail "no override written"
assert_contains "$(cat "$P11KIT_ETC/softhsm2.module")" "enable-in:" "override"
proxy_sees no
p11kit=$(p11-kit list-modules 2>&1)
assert_not_contains "$p11kit" "softhsm2:" "p11-kit list-modules"
ok --json backend list
jeq "$OUT" '.backends[0].p11kit[0] | [.file, .seen_by_applications, .hidden_by_ukey]' \
    '["/etc/pkcs11/modules/softhsm2.module",false,true]'
ok backend hide softhsm
assert_contains "$OUT" "Nothing to hide" "hide twice"

step "a second registration of the module (another package's, with an administrator's own override): hidden too"
printf 'module: %s\n' "$LIB" >"$P11KIT_MODULES/vendor-soft.module"
printf '# the administrator'"'"'s own\npriority: 5\n' >"$P11KIT_ETC/vendor-soft.module"
ADMIN=$(cat "$P11KIT_ETC/vendor-soft.module")
proxy_sees yes
ok --json backend list
jeq "$OUT" '[.backends[0].p11kit[] | [.name, .seen_by_applications]]' '[["softhsm2",false],["vendor-soft",true]]'
ok --json backend hide softhsm
jeq "$OUT" '.p11kit_hidden | map(.name)' '["vendor-soft"]'
proxy_sees no

step "unhide --all: every registration ukey hid is back, the administrator's file as it was, the config kept; hide --all hides them again"
CONF_BEFORE=$(cat "$T/ukey.conf")
ok --json backend unhide --all
jeq "$OUT" '[.p11kit_restored[] | [.name, .backend]] | sort' '[["softhsm2","softhsm"],["vendor-soft","softhsm"]]'
proxy_sees yes
assert_eq "$(cat "$P11KIT_ETC/vendor-soft.module")" "$ADMIN" "the administrator's override as it was"
[[ ! -e $P11KIT_ETC/softhsm2.module ]] || fail "ukey's own override left behind"
assert_eq "$(cat "$T/ukey.conf")" "$CONF_BEFORE" "unhide leaves the config alone"
ok backend unhide --all
assert_contains "$OUT" "Nothing hidden by ukey." "unhide twice"
ok --json backend hide --all
jeq "$OUT" '[.backends[] | [.name, (.p11kit_hidden | map(.name) | sort)]]' '[["softhsm",["softhsm2","vendor-soft"]]]'
proxy_sees no
uk backend unhide
assert_eq "$RC" 2 "unhide: NAME or --all"
assert_contains "$ERR" "name a backend, or give --all" "unhide without a name"
uk backend unhide x --all
assert_eq "$RC" 2 "unhide: NAME and --all"
# CLI11's "excludes" whole: only typed words are masked, never inside another.
assert_contains "$ERR" "excludes --all" "the usage error readable"
assert_contains "$(cat "$P11KIT_ETC/vendor-soft.module")" "$ADMIN" "the administrator's lines kept"

step "add: refused for a bad module, a taken name or module, with the config untouched"
BEFORE=$(cat "$T/ukey.conf")
uk --json backend add cards /nonexistent/module.so
jerror 12 "add: missing module"
assert_contains "$(jr "$OUT" .error.message)" "/nonexistent/module.so" "add: missing module"
uk --json backend add cards /bin/true
jerror 12 "add: not a module"
uk --json backend add softhsm "$FAKECARD_MODULE"
jerror 12 "add: name taken"
assert_contains "$(jr "$OUT" .error.message)" "a backend named 'softhsm' is already configured" "add: name taken"
uk --json backend add again "$SOFTHSM_MODULE"
jerror 12 "add: module taken"
assert_contains "$(jr "$OUT" .error.message)" "is already the backend 'softhsm'" "add: module taken"
uk --json backend add 'bad name!' "$FAKECARD_MODULE"
jerror 12 "add: bad name"
assert_contains "$(jr "$OUT" .error.message)" "name must be 1-32 letters" "add: bad name"
assert_eq "$(cat "$T/ukey.conf")" "$BEFORE" "config untouched by refusals"

step "add: a second backend (the test card); the config keeps its comment and mode"
ok --json backend add cards "$FAKECARD_MODULE" --pin-counter token --optional
jeq "$OUT" '.' "{\"config\":\"$T/ukey.conf\",\"module\":\"$FAKECARD_MODULE\",\"name\":\"cards\",\"p11kit_hidden\":[]}"
CONF=$(cat "$T/ukey.conf")
assert_contains "$CONF" "# the helpdesk's config, keep this line" "comment kept"
assert_contains "$CONF" "$(printf '[[backend]]\nname = "cards"\nmodule = "%s"\npin_counter = "token"\noptional = true' "$FAKECARD_MODULE")" "the new table"
assert_eq "$(stat -c %a "$T/ukey.conf")" 640 "mode kept"
ok --json backend list
jeq "$OUT" '[.backends[] | [.name, .pin_counter, .optional]]' '[["softhsm","ukey",false],["cards","token",true]]'
ok --json list
jeq "$OUT" '[.keys[].backend] | unique' '["cards","softhsm"]'

step "remove: the backend out, its registrations back (the administrator's file as it was)"
ok --json backend remove softhsm
jeq "$OUT" '.name' '"softhsm"'
jeq "$OUT" '.p11kit_restored | map(.name)' '["softhsm2","vendor-soft"]'
[[ ! -e $P11KIT_ETC/softhsm2.module ]] || fail "ukey's own override is still there"
assert_eq "$(cat "$P11KIT_ETC/vendor-soft.module")" "$ADMIN" "the administrator's override as it was"
proxy_sees yes
CONF=$(cat "$T/ukey.conf")
assert_not_contains "$CONF" "name = \"softhsm\"" "softhsm's table gone"
assert_contains "$CONF" "# the helpdesk's config, keep this line" "comment kept"
uk --json backend remove softhsm
jerror 12 "remove twice"
assert_contains "$(jr "$OUT" .error.message)" "no backend named 'softhsm'" "remove twice"

step "remove: never the last backend"
BEFORE=$(cat "$T/ukey.conf")
uk --json backend remove cards
jerror 12 "remove the last"
assert_contains "$(jr "$OUT" .error.message)" "no [[backend]] is configured" "remove the last"
assert_eq "$(cat "$T/ukey.conf")" "$BEFORE" "config untouched"

step "add to a config that does not exist yet: made, with its folder, readable by all whatever the umask"
umask 077
UKEY_CONF=$T/etc-ukey/ukey.conf uk --json backend add first "$SOFTHSM_MODULE" --keep-p11-kit
umask 022
expect_rc 0 "add to a new config"
assert_eq "$(stat -c %a "$T/etc-ukey/ukey.conf") $(stat -c %a "$T/etc-ukey")" "644 755" "new config and folder modes"
assert_eq "$(cat "$T/etc-ukey/ukey.conf")" "$(printf '[[backend]]\nname = "first"\nmodule = "%s"' "$SOFTHSM_MODULE")" "new config"

step "add back with the defaults: hides the registrations again"
ok backend add softhsm "$SOFTHSM_MODULE"
assert_contains "$OUT" "Backend 'softhsm' ($SOFTHSM_MODULE) added to $T/ukey.conf." "add text"
assert_contains "$OUT" "Its registration with p11-kit as 'softhsm2' is hidden (/etc/pkcs11/modules/softhsm2.module): applications see its Keys once, through ukey." "add text"
proxy_sees no
ok --json list
jeq "$OUT" '[.keys[] | select(.label == "alice") | .backend]' '["softhsm"]'

check_no_pin_leaks
finish
