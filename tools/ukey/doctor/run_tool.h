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

// The tool's standard output (stderr discarded, stdin empty), up to
// max_output bytes or the time limit, whichever comes first (the tool is
// then killed); nullopt when it cannot run.
std::optional<std::string> run_tool(const ToolRun& r);

} // namespace ukey::cli::doctor
