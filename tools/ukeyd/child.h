// Starting the daemon's children (scanner, backend waiters, hooks,
// renewals) one way: posix_spawn, stdin from /dev/null, default signal
// handling and an empty signal mask (the daemon blocks the signals it reads
// through its signalfd, and a child must not inherit that).
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace ukey::daemon {

struct Spawned {
    pid_t pid = -1;
    int out = -1;  // the child's stdout (non-blocking, close-on-exec) when captured
    int error = 0; // errno when pid is -1
};

// argv[0] is the program's path. env: nullptr = the daemon's own.
// own_group: the child leads a process group, so that a timeout can end
// whatever it started too. pass_fd >= 0: the child gets it as its fd 3.
Spawned spawn(const std::vector<std::string>& argv, const std::vector<std::string>* env, bool capture_stdout,
              bool own_group, int pass_fd = -1);

} // namespace ukey::daemon
