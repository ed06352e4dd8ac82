#include "ukeytest/process.h"

#include "ukeytest/rv.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <exception>
#include <stdexcept>
#include <thread>

namespace ukeytest {
namespace {

using Clock = std::chrono::steady_clock;

ChildResult wait_for(pid_t pid, int fd, std::chrono::milliseconds timeout)
{
    ChildResult r;
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    auto deadline = Clock::now() + timeout;
    auto drain = [&] {
        char buf[4096];
        for (;;) {
            ssize_t n = read(fd, buf, sizeof buf);
            if (n > 0)
                r.output.append(buf, n);
            else if (n < 0 && errno == EINTR)
                continue;
            else
                return n == 0;  // true at EOF
        }
    };
    for (;;) {
        int status = 0;
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid) {
            drain();
            if (WIFEXITED(status)) {
                r.status = ChildResult::Status::Exited;
                r.code = WEXITSTATUS(status);
            } else {
                r.status = ChildResult::Status::Signaled;
                r.code = WTERMSIG(status);
            }
            break;
        }
        if (Clock::now() >= deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            drain();
            r.status = ChildResult::Status::TimedOut;
            r.code = -1;
            break;
        }
        pollfd p{fd, POLLIN, 0};
        if (poll(&p, 1, 20) > 0)
            drain();
    }
    close(fd);
    return r;
}

void write_all(int fd, const std::string& s)
{
    size_t off = 0;
    while (off < s.size()) {
        ssize_t n = write(fd, s.data() + off, s.size() - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        off += n;
    }
}

// fork_with_pipe(fds): a pipe in fds, then fork(); throws if either fails.
pid_t fork_with_pipe(int fds[2])
{
    if (pipe(fds) != 0)
        throw std::runtime_error(std::string("pipe: ") + std::strerror(errno));
    pid_t pid = fork();
    if (pid < 0)
        throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
    return pid;
}

}  // namespace

std::string ChildResult::describe() const
{
    std::string s;
    switch (status) {
    case Status::Exited:
        s = "child exited with status " + std::to_string(code);
        break;
    case Status::Signaled:
        s = "child killed by signal " + std::to_string(code) + " (" + strsignal(code) + ")";
        if (code == SIGALRM)
            s += " - its alarm() fired: deadlock or hang";
        break;
    case Status::TimedOut:
        s = "child timed out (deadlock or hang) and was killed";
        break;
    }
    if (!output.empty())
        s += "\n--- child output ---\n" + output;
    return s;
}

void ChildReport::fail(const std::string& message)
{
    failed_ = true;
    text_ += message + "\n";
}

bool ChildReport::expect_rv(CK_RV expected, CK_RV actual, const std::string& what)
{
    if (expected == actual)
        return true;
    fail(what + ": returned " + rv_name(actual) + ", expected " + rv_name(expected));
    return false;
}

bool ChildReport::expect(bool condition, const std::string& what)
{
    if (!condition)
        fail("check failed: " + what);
    return condition;
}

ChildResult run_in_child(const std::function<void(ChildReport&)>& fn,
                         std::chrono::milliseconds timeout)
{
    int fds[2];
    pid_t pid = fork_with_pipe(fds);
    if (pid == 0) {
        close(fds[0]);
        alarm(static_cast<unsigned>(timeout.count() / 1000) + 2);
        ChildReport report;
        try {
            fn(report);
        } catch (const std::exception& e) {
            report.fail(std::string("exception: ") + e.what());
        } catch (...) {
            report.fail("unknown exception");
        }
        write_all(fds[1], report.text());
        _exit(report.failed() ? 1 : 0);
    }
    close(fds[1]);
    return wait_for(pid, fds[0], timeout);
}

ChildResult run_program(const std::vector<std::string>& argv, std::chrono::milliseconds timeout)
{
    if (argv.empty())
        throw std::invalid_argument("run_program: empty argv");
    std::vector<char*> args;
    for (const auto& a : argv)
        args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);

    int fds[2];
    pid_t pid = fork_with_pipe(fds);
    if (pid == 0) {
        close(fds[0]);
        dup2(fds[1], STDOUT_FILENO);
        dup2(fds[1], STDERR_FILENO);
        close(fds[1]);
        execv(args[0], args.data());
        _exit(127);
    }
    close(fds[1]);
    return wait_for(pid, fds[0], timeout);
}

std::string self_exe()
{
    char buf[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n <= 0)
        throw std::runtime_error("readlink(/proc/self/exe) failed");
    return std::string(buf, n);
}

}  // namespace ukeytest
