#include "fix.h"

#include "token/escape.h"

#include <cerrno>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace ukey::cli::doctor {

std::string remedy_text(const Finding& f)
{
    // Shown on a terminal: its words come from Keys, certificates and folder
    // names.
    std::string s;
    for (const auto& a : f.remedy) {
        if (!s.empty())
            s += ' ';
        s += escape::printable(a);
    }
    return s;
}

int apply(const Finding& f, const FixOptions& o)
{
    std::vector<std::string> argv = f.remedy;
    if (argv.empty())
        return -1;
    if (argv[0] == "ukey") {
        argv[0] = "/proc/self/exe"; // this very ukey, not one found on PATH
        if (!o.module_path.empty())
            argv.insert(argv.begin() + 1, {"--module", o.module_path});
        if (f.remedy_needs_pin && !o.pin_file.empty())
            argv.insert(argv.end(), {"--pin-file", o.pin_file});
    }
    std::vector<char*> args;
    for (auto& a : argv)
        args.push_back(a.data());
    args.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, 2, 1);
    pid_t pid = -1;
    const int rc = posix_spawn(&pid, args[0], &fa, nullptr, args.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0)
        return -1;
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

} // namespace ukey::cli::doctor
