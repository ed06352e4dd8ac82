// Running test code in a forked child, or another program, with a timeout, so
// that a deadlock or crash there fails the test instead of hanging/killing it.
#pragma once

#include <ukey/pkcs11.h>

#include <chrono>
#include <functional>
#include <string>
#include <vector>

namespace ukeytest {

struct ChildResult {
    enum class Status { Exited, Signaled, TimedOut };
    Status status = Status::TimedOut;
    int code = -1;       // exit status, or signal number
    std::string output;  // run_in_child: the child's failure report;
                         // run_program: its stdout + stderr
    bool ok() const { return status == Status::Exited && code == 0; }
    std::string describe() const;  // for assertion messages
};

// Child-side collector of failures (gtest assertions must not be used in a
// forked child; their results would never reach the parent's report).
class ChildReport {
public:
    void fail(const std::string& message);
    // Records a failure unless actual == expected; returns whether equal.
    bool expect_rv(CK_RV expected, CK_RV actual, const std::string& what);
    bool expect(bool condition, const std::string& what);
    bool failed() const { return failed_; }
    const std::string& text() const { return text_; }

private:
    bool failed_ = false;
    std::string text_;
};

// fork(); the child runs fn (exceptions count as failures), sends its report
// through a pipe and _exit()s (0 = no failure). The child also arms alarm()
// as a second line of defence; the parent SIGKILLs it after `timeout`.
ChildResult run_in_child(const std::function<void(ChildReport&)>& fn,
                         std::chrono::milliseconds timeout);

// fork() + execv(argv[0], argv) with the current environment; output captured.
ChildResult run_program(const std::vector<std::string>& argv,
                        std::chrono::milliseconds timeout);

// Path of the running executable (/proc/self/exe), for re-running this test
// binary as a second, independent process.
std::string self_exe();

}  // namespace ukeytest
