# Sourced by scripts/run.sh, flake-watch.sh and tsan.sh: the sanitizer run-time
# options for a build tree, in one place.
#
# sanitizer_env DIR: exports the options that DIR's sanitizer needs (from
# UKEY_SANITIZER in its CMakeCache.txt: "address", "thread" or none).
# ROOT must name the repository.
sanitizer_env() {
    local kind
    kind=$(sed -n 's/^UKEY_SANITIZER:INTERNAL=//p' "$1/CMakeCache.txt" 2>/dev/null)
    # Trees configured before UKEY_SANITIZER existed: the old boolean.
    if [[ -z $kind ]] && grep -qE '^UKEY_SANITIZE:[A-Z]+=(ON|1|TRUE)$' "$1/CMakeCache.txt" 2>/dev/null; then
        kind=address
    fi
    case $kind in
        address)
            # Sanitizer reports fail the test; third-party leaks, if any, go
            # to tests/lsan.supp. intercept_tls_get_addr=0: GCC 12's
            # LeakSanitizer otherwise scans the stale dynamic-TLS block of a
            # dlclose'd library at exit and dies ("Tracer caught signal 11",
            # DTLS at 0x398) in any test that unloads the module or a
            # backend; leak checking stays on.
            export ASAN_OPTIONS="halt_on_error=1:abort_on_error=0:print_stacktrace=1:detect_leaks=1:detect_stack_use_after_return=1:check_initialization_order=1:strict_init_order=1:strict_string_checks=1:symbolize=1:intercept_tls_get_addr=0"
            export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:report_error_type=1"
            export LSAN_OPTIONS="suppressions=$ROOT/tests/lsan.supp:print_suppressions=0"
            ;;
        thread)
            # A report ends the process (exit 66); the suppressions name
            # third-party code only (tests/tsan.supp says why each is
            # there). Reports go to files under $TSAN_REPORTS (default
            # DIR/tsan-reports/), one per process: a daemon that a shell
            # suite starts writes its stderr to the suite's own log, where
            # a report would pass unseen. scripts/tsan.sh fails on any file.
            export TSAN_REPORTS=${TSAN_REPORTS:-$(cd "$1" && pwd)/tsan-reports}
            mkdir -p "$TSAN_REPORTS"
            export TSAN_OPTIONS="halt_on_error=1:exitcode=66:second_deadlock_stack=1:history_size=4:suppressions=$ROOT/tests/tsan.supp:print_suppressions=0:log_path=$TSAN_REPORTS/report"
            ;;
    esac
}
