#include "child.h"

#include <cerrno>
#include <csignal>

#include <fcntl.h>
#include <spawn.h>
#include <unistd.h>

extern char** environ;

namespace ukey::daemon {

Spawned spawn(const std::vector<std::string>& argv, const std::vector<std::string>* env, bool capture_stdout,
              bool own_group, int pass_fd)
{
    Spawned r;
    int p[2] = {-1, -1};
    if (capture_stdout && pipe2(p, O_CLOEXEC) != 0) {
        r.error = errno;
        return r;
    }
    std::vector<char*> av, ev;
    for (const auto& a : argv)
        av.push_back(const_cast<char*>(a.c_str()));
    av.push_back(nullptr);
    if (env) {
        for (const auto& e : *env)
            ev.push_back(const_cast<char*>(e.c_str()));
        ev.push_back(nullptr);
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    if (capture_stdout)
        posix_spawn_file_actions_adddup2(&fa, p[1], STDOUT_FILENO);
    posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    // dup2 clears close-on-exec on the copy (not when pass_fd is 3 already:
    // the caller never passes that, ukeyd's own descriptors are above it).
    if (pass_fd >= 0) {
        posix_spawn_file_actions_adddup2(&fa, pass_fd, 3);
        // A serving child takes a peer's input: nothing of ukeyd's but its
        // connection, whatever a library left without close-on-exec.
        posix_spawn_file_actions_addclosefrom_np(&fa, 4);
    }
    posix_spawnattr_t at;
    posix_spawnattr_init(&at);
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&at, &none);
    posix_spawnattr_setsigdefault(&at, &all);
    short flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
    if (own_group) {
        posix_spawnattr_setpgroup(&at, 0);
        flags |= POSIX_SPAWN_SETPGROUP;
    }
    posix_spawnattr_setflags(&at, flags);
    const int rc = posix_spawn(&r.pid, av[0], &fa, &at, av.data(), env ? ev.data() : environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    if (capture_stdout)
        close(p[1]);
    if (rc != 0) {
        r.pid = -1;
        r.error = rc;
        if (capture_stdout)
            close(p[0]);
        return r;
    }
    if (capture_stdout) {
        fcntl(p[0], F_SETFL, O_NONBLOCK);
        r.out = p[0];
    }
    return r;
}

} // namespace ukey::daemon
