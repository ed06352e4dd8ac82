// A tool the doctor asks (timedatectl, certutil): run with a time limit,
// its output read up to a bound.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace ukey::cli::doctor {

struct ToolRun {
    std::vector<std::string> argv; // argv[0]: the tool's absolute path
    // The environment: empty for ukey's own (the tool loads ukey's module and
    // needs what it needs: UKEY_CONF, the backends' variables).
    std::vector<std::string> env;
    int timeout_ms = 3000;
    std::size_t max_output = 64;
};

// For a caller that wants more than the output (`ukey browser` running
// modutil): its standard error too, and how it ended.
struct ToolOutcome {
    bool with_stderr = false; // in: stderr into the same output
    int exit_status = -1;     // out: its exit status when it ended by itself in time
};

// The tool's standard output (stderr discarded unless asked for, stdin empty), up to
// max_output bytes or the time limit, whichever comes first (the tool is
// then killed); nullopt when it cannot run.
std::optional<std::string> run_tool(const ToolRun& r, ToolOutcome* outcome = nullptr);

} // namespace ukey::cli::doctor
