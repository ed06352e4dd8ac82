#!/usr/bin/env bash
# `ukey cert export --out FILE` never writes through a symbolic link: root
# exporting into a shared folder (/tmp) where another user planted a link to
# a file of root's must not truncate or fill that file. The export writes a
# new file and renames it over the name; a link at the name is refused. A
# regular file at the name is replaced whole, and no temporary file is left.
. "$(dirname "$0")/../cli/lib.sh"
. "$(dirname "$0")/lib.sh"
need_root
need openssl
cli_setup

U=User-exp-Qz71
init_key alice So-exp-Wn38 "$U"
soft_cert "ukey export test" "$T/cert.pem" now 30
ok cert write alice --file "$T/cert.pem" --force --pin-fd 3 3<<<"$U"
want=$(openssl x509 -in "$T/cert.pem" -outform PEM)

step "a regular file: written, and replaced whole on a second export"
ok cert export alice --out "$T/out.pem"
[[ -f $T/out.pem && ! -L $T/out.pem ]] || fail "$T/out.pem is not a regular file"
assert_eq "$(openssl x509 -in "$T/out.pem" -outform PEM)" "$want" "exported certificate"
head -c 100000 /dev/zero | tr '\0' x >"$T/out.pem"
ok cert export alice --out "$T/out.pem"
assert_eq "$(openssl x509 -in "$T/out.pem" -outform PEM)" "$want" "re-exported certificate"
[[ $(stat -c %s "$T/out.pem") -lt 100000 ]] || fail "the old, longer content is still there"
leftovers=$(find "$T" -maxdepth 1 -name '.out.pem.*')
[[ -z $leftovers ]] || fail "temporary files left behind: $leftovers"

step "a planted link in a shared sticky folder: refused, its target untouched"
S=$T/shared
mkdir -m 1777 "$S"
printf 'root precious data\n' >"$T/precious"
chmod 0644 "$T/precious"
ln -s "$T/precious" "$S/cert.pem"
chown -h "$NOBODY:$NOBODY" "$S/cert.pem"   # planted by another user
uk cert export alice --out "$S/cert.pem"
expect_rc 1 "export onto another user's symlink"
assert_contains "$ERR" "cannot write $S/cert.pem: it is a symbolic link" "stderr"
assert_eq "$(cat "$T/precious")" "root precious data" "the link's target"
[[ -L $S/cert.pem ]] || fail "the link was replaced"

step "a dangling link: refused, nothing created at its target"
ln -s "$T/created-through-link" "$T/dangling.pem"
uk --json cert export alice --out "$T/dangling.pem"
jerror 1 "export onto a dangling symlink"
[[ ! -e $T/created-through-link ]] || fail "the export created the file the link points to"

step "the same for csr --out (the one writer of public files)"
ok key generate alice --type ec-p256 --label exp --id e1 --pin-fd 3 3<<<"$U"
uk csr alice --key e1 --subject /CN=exp --out "$S/cert.pem" --pin-fd 3 3<<<"$U"
[[ $RC -ne 0 ]] || fail "csr --out onto a symlink should fail"
assert_eq "$(cat "$T/precious")" "root precious data" "the link's target after csr"
finish
