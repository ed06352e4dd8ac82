// Backend scans. The daemon never loads a backend module itself: a child
// process (`ukeyd --scan`) loads libukey-pkcs11.so, reads every slot, Key,
// PIN state and certificate, prints them as JSON and exits. A fresh process
// sees tokens SoftHSM2 only shows after C_Initialize, and a vendor module
// that hangs or crashes takes only the child with it.
#pragma once

#include <nlohmann/json.hpp>

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>

namespace ukey::daemon {

// The child's side: scans through the module at `module_path` and writes
// {"slots":[...],"keys":[...]} to stdout. Returns the exit code.
int run_scan(const std::string& module_path);

struct ScanResult {
    bool ok = false;
    std::string error;   // why not, in plain words
    nlohmann::json data; // {"slots":[...],"keys":[...]} when ok
    int64_t started_ms = 0, duration_ms = 0;
};

// The parent's side: one scan at a time; a request while one runs is queued.
class Scanner {
public:
    explicit Scanner(std::string self_exe) : exe_(std::move(self_exe)) {}
    ~Scanner();

    void request() { wanted_ = true; }
    // Starts the child when one is wanted and none runs.
    void maybe_start(double timeout_s);
    bool running() const { return pid_ > 0; }
    int fd() const { return fd_; }     // the child's stdout, -1 if none
    pid_t pid() const { return pid_; }
    int64_t deadline_ms() const { return deadline_ms_; }

    // Output arrived; a result once the child has closed it and been reaped.
    std::optional<ScanResult> on_readable();
    // The child was reaped (from the SIGCHLD handler's waitpid).
    std::optional<ScanResult> on_exit(int status);
    // Kills a child past its deadline.
    std::optional<ScanResult> on_timeout(int64_t now_ms);

private:
    std::optional<ScanResult> finish_if_done();
    std::string exe_;
    bool wanted_ = false;
    pid_t pid_ = -1;
    int fd_ = -1;
    bool eof_ = false;
    std::optional<int> status_;
    bool timed_out_ = false;
    std::string out_;
    int64_t started_ms_ = 0, deadline_ms_ = 0;
};

} // namespace ukey::daemon
