#include "run_tool.h"

#include <chrono>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace ukey::cli::doctor {

std::optional<std::string> run_tool(const ToolRun& r, ToolOutcome* outcome)
{
    if (r.argv.empty() || access(r.argv[0].c_str(), X_OK) != 0)
        return std::nullopt;
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0)
        return std::nullopt;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
    if (outcome && outcome->with_stderr)
        posix_spawn_file_actions_adddup2(&fa, fds[1], 2);
    else
        posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    std::vector<std::string> args = r.argv, env = r.env;
    std::vector<char*> argv, envp;
    for (auto& a : args)
        argv.push_back(a.data());
    argv.push_back(nullptr);
    for (auto& e : env)
        envp.push_back(e.data());
    envp.push_back(nullptr);
    pid_t pid = -1;
    const int rc = posix_spawn(&pid, argv[0], &fa, nullptr, argv.data(), env.empty() ? environ : envp.data());
    posix_spawn_file_actions_destroy(&fa);
    close(fds[1]);
    if (rc != 0) {
        close(fds[0]);
        return std::nullopt;
    }
    std::string out;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(r.timeout_ms);
    char buf[4096];
    bool ended = false; // its output ended: it exited (or closed it)
    while (out.size() < r.max_output) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        pollfd pfd{fds[0], POLLIN, 0};
        if (left.count() <= 0 || poll(&pfd, 1, static_cast<int>(left.count())) <= 0)
            break;
        const ssize_t n = read(fds[0], buf, sizeof buf);
        if (n <= 0) {
            ended = n == 0;
            break;
        }
        out.append(buf, std::min(static_cast<std::size_t>(n), r.max_output - out.size()));
    }
    close(fds[0]);
    int status = 0;
    pid_t done = 0;
    // Its exit status, when it is asked for and the tool ends in time.
    while (ended && outcome && (done = waitpid(pid, &status, WNOHANG)) == 0 &&
           std::chrono::steady_clock::now() < deadline)
        usleep(10000);
    if (done != pid) {
        kill(pid, SIGKILL); // done, or out of time or room
        waitpid(pid, nullptr, 0);
    }
    if (outcome)
        outcome->exit_status = done == pid && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return out;
}

} // namespace ukey::cli::doctor
