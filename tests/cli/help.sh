#!/usr/bin/env bash
# ukey --help and ukey COMMAND --help: exit 0 and list exactly the options
# each command has (a new or vanished option fails here until this list,
# docs/cli.md and docs/ukey.1 follow); usage errors exit 2; the man page and
# docs/cli.md name every command and option, and the man page formats cleanly.
. "$(dirname "$0")/lib.sh"
cli_setup
DOCS=$(cd "$CLI_DIR/../../docs" && pwd)

# Every command and its options (besides -h,--help), from tools/ukey/cmd_*.cpp;
# "ukey" is ukey itself.
declare -A OPTIONS=(
    [ukey]="--version --module --json -q --quiet"
    [list]=""
    [info]=""
    [init]="--label --tries --so-tries --transport-pin -y --yes --so-pin-fd --so-pin-file --pin-fd --pin-file"
    [pin]=""
    [pin verify]="--so --pin-fd --pin-file"
    [pin change]="--so --pin-fd --pin-file --new-pin-fd --new-pin-file"
    [pin unlock]="--so-pin-fd --so-pin-file --new-pin-fd --new-pin-file"
    [key]=""
    [key generate]="--type --label --id --pin-fd --pin-file"
    [key list]="--pin-fd --pin-file"
    [key delete]="--id -y --yes --force --pin-fd --pin-file"
    [key export]=""
    [csr]="--key --subject --san --key-usage --ext-key-usage --hash --out --der --pin-fd --pin-file"
    [cert]=""
    [cert list]=""
    [cert show]="--id --label --file"
    [cert export]="--id --label --out --der --with-key"
    [cert write]="--file --label --force --pin-fd --pin-file"
    [cert delete]="--id --label --all -y --yes --pin-fd --pin-file"
    [status]="--socket"
    [watch]="--socket --events --count --timeout"
    [audit]=""
    [audit show]="--key --since --kind"
    [audit verify]=""
    [browser]=""
    [browser status]="--system"
    [browser enable]="--system --auto-select --id --by-subject"
    [browser disable]="--system --auto-select"
    [backend]=""
    [backend list]=""
    [backend add]="--pin-counter --optional --fixed --no-fixes --keep-p11-kit"
    [backend hide]="--all"
    [backend unhide]="--all"
    [backend remove]="--keep-hidden"
)
# Commands that take the KEY positional.
WITH_KEY="info init|pin verify|pin change|pin unlock|key generate|key list|key delete|csr|cert list|cert show|cert export|cert write|cert delete"
# Subcommands of each group.
declare -A SUBS=([ukey]="list info init pin key csr cert status watch audit browser backend" [pin]="verify change unlock"
                 [key]="generate list delete export" [cert]="list show export write delete"
                 [audit]="show verify" [browser]="status enable disable" [backend]="list add hide unhide remove")

# options_in HELP: the options a CLI11 help text lists, one per line, sorted.
options_in() {
    grep -oE '^  +(-[a-zA-Z],)?--[a-z][a-z0-9-]*' <<<"$1" | sed 's/^ *//' | tr ',' '\n' \
        | { grep -vxE -- '-h|--help' || true; } | sort -u
}

for k in "${!OPTIONS[@]}"; do
    cmd=${k#ukey}
    # shellcheck disable=SC2086
    ok $cmd --help
    help=$OUT
    what="ukey ${cmd:+$cmd }--help"
    [[ -z $ERR ]] || fail "$what wrote on stderr: $ERR"
    assert_contains "$help" "Usage: ukey${cmd:+ $cmd} [OPTIONS]" "$what"
    assert_contains "$help" "-h,--help" "$what"
    want=$(tr ' ' '\n' <<<"${OPTIONS[$k]}" | grep . | sort -u || true)
    got=$(options_in "$help")
    if [[ $got != "$want" ]]; then
        show "$what" "$help"
        fail "$what lists options [$(tr '\n' ' ' <<<"$got")], expected [$(tr '\n' ' ' <<<"$want")]"
    fi
    # Each option has a description (CLI11 puts it on the same or next line).
    for o in ${OPTIONS[$k]}; do
        line=$(grep -A1 -E -- "(^|[ ,])$o( |,|$)" <<<"$help" | tr -s ' ' | head -2 | tr '\n' ' ')
        [[ $(wc -w <<<"$line") -ge 3 ]] || fail "$what: option $o has no description"
    done
    if [[ -n ${SUBS[$k]+x} ]]; then
        for sub in ${SUBS[$k]}; do
            assert_matches "$help" "^  $sub +[A-Z]" "$what (subcommand $sub)"
        done
    fi
    if grep -qxF -- "$cmd" <<<"$(tr '|' '\n' <<<"$WITH_KEY")"; then
        assert_matches "$help" "KEY TEXT" "$what (the KEY argument)"
    fi
    # The exit codes are in every help.
    assert_contains "$help" "Exit codes: 0 ok, 1 failure, 2 usage, 3 no Key" "$what"
done
ok -h
assert_contains "$OUT" "Usage: ukey [OPTIONS] SUBCOMMAND" "ukey -h"
ok --version
assert_matches "$OUT" '^ukey [0-9]+\.[0-9]+\.[0-9]+$' "ukey --version"

step "usage errors exit 2 and point to --help"
for args in "" "frobnicate" "pin" "pin frobnicate" "key" "key frobnicate" "cert" "cert frobnicate" \
    "list --frobnicate" "--frobnicate list" "info a b" "init" "key generate" "key generate --type dsa1024" \
    "key delete" "csr" "csr --key 01" "cert write" "cert show --file x --id 01" "csr --key 01 --subject /CN=x --hash md5" \
    "pin verify --pin-fd x" "init --label x --tries 99"; do
    # shellcheck disable=SC2086
    uk $args
    expect_rc 2 "ukey $args"
    assert_contains "$ERR" "(run \`ukey --help\` or \`ukey COMMAND --help\`)" "ukey $args"
    [[ -z $OUT ]] || fail "ukey $args wrote on stdout: $OUT"
done
# An unknown command is named in the error.
uk frobnicate
soft assert_contains "$ERR" "frobnicate" "the error for an unknown command"
# Usage errors come before any Key is touched: they work with no module.
UKEY_MODULE=/nonexistent/module.so uk pin frobnicate
expect_rc 2 "a usage error without a module"

step "the module: --module and \$UKEY_MODULE"
UKEY_MODULE=/nonexistent/module.so uk list
expect_rc 10 "ukey list with a missing module"
assert_contains "$ERR" "cannot load the ukey module /nonexistent/module.so" "missing module"
assert_contains "$ERR" "set UKEY_MODULE or --module" "missing module"
# shellcheck disable=SC2097,SC2098 # on purpose: --module gets the real module
UKEY_MODULE=/nonexistent/module.so uk --module "$UKEY_MODULE" --json list
expect_rc 0 "--module overrides \$UKEY_MODULE"
uk --json --module /nonexistent/module.so list
jerror 10 "--module missing (--json)"
echo 'modul = "typo"' >>"$T/ukey.conf"
uk --json list
jerror 10 "a broken config"
assert_contains "$ERR" "unknown key 'modul'" "a broken config (the log line)"

step "docs: every command and option is in docs/cli.md and docs/ukey.1"
[[ -r $DOCS/cli.md && -r $DOCS/ukey.1 ]] || fail "docs/cli.md or docs/ukey.1 is missing"
command -v groff >/dev/null 2>&1 || fail "groff is not installed: run scripts/setup.sh (or apt-get install groff-base)"
man_text=$(MANWIDTH=200 groff -man -Tutf8 -ww -z "$DOCS/ukey.1" 2>&1) || true
[[ -z $man_text ]] || { show "groff warnings" "$man_text"; fail "docs/ukey.1 has formatting warnings"; }
man_text=$(groff -man -Tascii -P-cbou -rLL=200n "$DOCS/ukey.1" 2>/dev/null)
cli_md=$(cat "$DOCS/cli.md")
for k in "${!OPTIONS[@]}"; do
    if [[ $k != ukey ]]; then
        assert_contains "$man_text" "ukey $k" "docs/ukey.1 (command)"
        assert_contains "$cli_md" "ukey $k" "docs/cli.md (command)"
    fi
    for o in ${OPTIONS[$k]}; do
        assert_contains "$man_text" "$o" "docs/ukey.1 (option of '$k')"
        assert_contains "$cli_md" "$o" "docs/cli.md (option of '$k')"
    done
done
for code in 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19; do
    assert_matches "$man_text" "^ +$code +[A-Za-z]" "docs/ukey.1 (exit code $code)"
    assert_matches "$cli_md" "^\| *$code *\|" "docs/cli.md (exit code $code)"
done
for v in UKEY_MODULE UKEY_CONF UKEY_LOG_LEVEL SOFTHSM2_CONF; do
    assert_contains "$man_text" "$v" "docs/ukey.1 (environment)"
done

finish
