#include "server.h"

#include <chrono>
#include <csignal>
#include <stdexcept>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

#ifndef UKEY_BENCH_P11KIT_CLIENT
#define UKEY_BENCH_P11KIT_CLIENT "/usr/lib/x86_64-linux-gnu/pkcs11/p11-kit-client.so"
#endif

namespace ukey_bench {

std::string p11kit_client_module()
{
    return UKEY_BENCH_P11KIT_CLIENT;
}

std::string service_config(const std::string& dir)
{
    return "\n[daemon]\nsocket = \"" + dir + "/ukeyd.sock\"\npcsc = false\nrescan_interval = 0\n"
           "\n[service]\nenabled = true\nsocket = \"" + dir + "/pkcs11\"\nuser = \"" +
           std::to_string(geteuid()) + "\"\n";
}

Server::Server(Serve kind, const std::string& dir, const std::string& ukeyd, const std::string& module,
               const std::string& softhsm)
{
    std::string socket;
    std::vector<std::string> argv;
    if (kind == Serve::service) {
        if (geteuid() == 0)
            throw std::runtime_error("--serve service: run the bench as a user other than root (ukeyd's service "
                                     "user is not root), e.g. setpriv --reuid=nobody --regid=nogroup --clear-groups");
        socket = dir + "/pkcs11";
        argv = {ukeyd, "--log-level", "warning"};
        setenv("UKEY_MODULE", module.c_str(), 1); // what the serving children load
    } else {
        socket = dir + "/p11kit.sock";
        argv = {"/usr/bin/p11-kit", "server", "-f", "--provider", softhsm, "-n", socket, "pkcs11:token=ukey-bench"};
    }
    std::vector<char*> av;
    for (auto& a : argv)
        av.push_back(a.data());
    av.push_back(nullptr);
    // Its stdout is not the bench's: `p11-kit server` prints shell lines
    // there, and the bench's stdout may be JSON.
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    const int rc = posix_spawn(&pid_, av[0], &fa, nullptr, av.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0)
        throw std::runtime_error("cannot start " + argv[0]);
    struct stat st;
    for (int i = 0; i < 400 && stat(socket.c_str(), &st) != 0; ++i) {
        int status = 0;
        if (waitpid(pid_, &status, WNOHANG) == pid_) {
            pid_ = -1;
            throw std::runtime_error(argv[0] + " ended before it served (its messages above)");
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    if (stat(socket.c_str(), &st) != 0)
        throw std::runtime_error(argv[0] + " did not make " + socket + " within 20 s");
    address_ = "unix:path=" + socket;
}

Server::~Server()
{
    if (pid_ <= 0)
        return;
    kill(pid_, SIGTERM);
    int status = 0;
    waitpid(pid_, &status, 0);
}

}  // namespace ukey_bench
