# tests/cli/doctor_lib.sh: running `ukey doctor` and reading its findings,
# for the doctor tests (doctor*.sh). Source it after lib.sh.

# doctor RC [ARGS...]: `ukey doctor` in text and --json; RC both times.
# Leaves the text in TEXT and the document in DOC.
TEXT='' DOC=''
doctor() {
    local rc=$1; shift
    uk doctor "$@"
    expect_rc "$rc" "ukey doctor $*"
    TEXT=$OUT
    uk --json doctor "$@"
    expect_rc "$rc" "ukey --json doctor $*"
    DOC=$OUT
    json_ok "$DOC" "ukey --json doctor"
    jkeys "$DOC" '.' "findings keys_checked worst" "doctor --json"
}
# finding ID SEVERITY: DOC has exactly one finding ID, of SEVERITY, with a
# sentence and a fix, and TEXT shows it; prints its "what".
finding() {
    local n
    n=$(jq --arg id "$1" '[.findings[] | select(.id == $id)] | length' <<<"$DOC")
    [[ $n == 1 ]] || { show doc "$DOC"; fail "expected one finding $1, found $n"; }
    local f; f=$(jq -c --arg id "$1" '.findings[] | select(.id == $id)' <<<"$DOC")
    jkeys "$f" '.' "id problem severity key what fix remedy" "finding $1"
    jeq "$f" '.severity' "\"$2\"" "finding $1"
    [[ $1 != P* ]] || jeq "$f" ".problem" "\"${1%%.*}\"" "finding $1"
    assert_contains "$TEXT" "[$1]" "the text names $1"
    assert_contains "$TEXT" "$(jr "$f" '.what')" "the text has $1's sentence"
    assert_contains "$TEXT" "What to do: $(jr "$f" '.fix')" "the text has $1's fix"
    jr "$f" '.what'
}
# fix_of ID: the "fix" of the one finding ID in DOC.
fix_of() { jq -r --arg id "$1" '.findings[] | select(.id == $id) | .fix' <<<"$DOC"; }
# no_finding ID: DOC has no finding ID.
no_finding() {
    local n
    n=$(jq --arg id "$1" '[.findings[] | select(.id == $id)] | length' <<<"$DOC")
    [[ $n == 0 ]] || { show doc "$DOC"; fail "unexpected finding $1"; }
}
