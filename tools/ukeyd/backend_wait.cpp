#include "backend_wait.h"

#include "clock.h"
#include "child.h"
#include "token/file_trust.h"
#include "token/log.h"
#include "token/escape.h"

#include <ukey/pkcs11.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <csignal>
#include <cstdio>
#include <cstring>

#include <dlfcn.h>
#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>


namespace ukey::daemon {

int run_backend_wait(const std::string& module)
{
    // Ends with the daemon, whatever happens to it.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    auto file = trusted_file(module, "backend module");
    if (!file) {
        // Names along the path come from symbolic links, possibly another
        // user's: escaped like every line ukeyd writes.
        std::fprintf(stderr, "ukeyd: %s\n", escape::printable(file.error().message).c_str());
        return 2;
    }
    void* dl = dlopen(file->c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!dl) {
        std::fprintf(stderr, "ukeyd: %s\n", escape::printable("cannot load " + module + ": " + dlerror()).c_str());
        return 2;
    }
    auto get = reinterpret_cast<CK_C_GetFunctionList>(dlsym(dl, "C_GetFunctionList"));
    CK_FUNCTION_LIST_PTR f = nullptr;
    if (!get || get(&f) != CKR_OK || !f)
        return 2;
    CK_C_INITIALIZE_ARGS args{};
    args.flags = CKF_OS_LOCKING_OK;
    CK_RV rv = f->C_Initialize(&args);
    if (rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED)
        return 2;
    for (;;) {
        CK_SLOT_ID slot = 0;
        rv = f->C_WaitForSlotEvent(0, &slot, nullptr);
        if (rv == CKR_OK) {
            std::printf("slot %lu\n", static_cast<unsigned long>(slot));
            std::fflush(stdout);
            continue;
        }
        // NO_EVENT from a blocking call means the module does not block.
        if (rv == CKR_FUNCTION_NOT_SUPPORTED || rv == CKR_NO_EVENT)
            return backend_wait_unsupported;
        std::fprintf(stderr, "ukeyd: C_WaitForSlotEvent of %s failed: 0x%lx\n", escape::printable(module).c_str(),
                     static_cast<unsigned long>(rv));
        return 2;
    }
}

void BackendWaiters::configure(const std::vector<BackendConfig>& backends)
{
    // A reload restarts them all: modules may have changed.
    stop_all();
    for (const auto& b : backends) {
        Child& c = children_[b.name];
        c.name = b.name;
        c.module = b.module;
        start(c);
    }
}

void BackendWaiters::start(Child& c)
{
    Spawned sp = spawn({exe_, "--wait-backend", c.module}, nullptr, true, false);
    if (sp.pid < 0)
        return;
    c.pid = sp.pid;
    c.fd = sp.out;
    c.buf.clear();
    c.restart_at = 0;
    by_fd_[c.fd] = c.name;
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = c.fd;
    epoll_ctl(ep_, EPOLL_CTL_ADD, c.fd, &ev);
}

bool BackendWaiters::on_readable(int fd)
{
    auto it = by_fd_.find(fd);
    if (it == by_fd_.end())
        return false;
    Child& c = children_[it->second];
    bool event = false;
    char buf[512];
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n > 0) {
            c.buf.append(buf, size_t(n));
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n == 0 || (n < 0 && errno != EAGAIN)) {
            by_fd_.erase(fd);
            close(fd);
            c.fd = -1;
        }
        break;
    }
    std::size_t nl;
    while ((nl = c.buf.find('\n')) != std::string::npos) {
        if (c.buf.rfind("slot ", 0) == 0) {
            event = true;
            c.failures = 0;
        }
        c.buf.erase(0, nl + 1);
    }
    if (c.buf.size() > 4096)
        c.buf.clear();
    if (event)
        log::debug("ukeyd: backend '" + c.name + "' reports a slot event");
    return event;
}

bool BackendWaiters::on_exit(pid_t pid, int status)
{
    for (auto& [name, c] : children_) {
        if (c.pid != pid)
            continue;
        c.pid = -1;
        if (WIFEXITED(status) && WEXITSTATUS(status) == backend_wait_unsupported) {
            c.unsupported = true;
            log::info("ukeyd: backend '" + name +
                      "' cannot wait for slot events (C_WaitForSlotEvent); its Keys are found by rescans");
            return true;
        }
        // Back-off: 1 s, 2 s, 4 s ... at most a minute between restarts.
        ++c.failures;
        const int64_t delay = std::min<int64_t>(60'000, 1000LL << std::min(c.failures - 1, 6));
        c.restart_at = mono_ms() + delay;
        log::warning("ukeyd: the slot-event waiter of backend '" + name + "' ended (" +
                     (WIFSIGNALED(status) ? std::string(strsignal(WTERMSIG(status)))
                                          : "exit " + std::to_string(WEXITSTATUS(status))) +
                     "); restarting it in " + std::to_string(delay / 1000) + " s");
        return true;
    }
    return false;
}

void BackendWaiters::on_tick(int64_t mono)
{
    for (auto& [name, c] : children_)
        if (c.pid < 0 && c.restart_at && mono >= c.restart_at) {
            if (c.fd >= 0) {
                by_fd_.erase(c.fd);
                close(c.fd);
                c.fd = -1;
            }
            start(c);
        }
}

int64_t BackendWaiters::next_deadline() const
{
    int64_t d = INT64_MAX;
    for (const auto& [name, c] : children_)
        if (c.pid < 0 && c.restart_at)
            d = std::min(d, c.restart_at);
    return d;
}

void BackendWaiters::stop_all()
{
    for (auto& [name, c] : children_) {
        if (c.pid > 0) {
            kill(c.pid, SIGKILL);
            waitpid(c.pid, nullptr, 0);
        }
        if (c.fd >= 0)
            close(c.fd);
    }
    children_.clear();
    by_fd_.clear();
}

std::vector<std::string> BackendWaiters::waiting() const
{
    std::vector<std::string> out;
    for (const auto& [name, c] : children_)
        if (c.pid > 0)
            out.push_back(name);
    return out;
}

} // namespace ukey::daemon
