#include "serve_child.h"
#include "serve_vendor.h"

#include "client/module.h"
#include "token/log.h"
#include "token/peer_access.h"

// p11-kit marks its server side "unstable API"; it is what `p11-kit server`
// itself runs, unchanged since 0.23.
#define P11_KIT_FUTURE_UNSTABLE_API 1
#include <p11-kit/remote.h>
#include <ukey/vendor.h>

#include <cerrno>
#include <cstring>
#include <sstream>
#include <vector>

#include <dlfcn.h>
#include <grp.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

namespace ukey::daemon {

namespace {

constexpr int first_byte_timeout_ms = 30'000;

// "a:b[:c]" of decimal ids.
bool split_ids(const std::string& s, std::vector<unsigned long>& out, std::size_t n)
{
    std::stringstream in(s);
    std::string part;
    out.clear();
    while (std::getline(in, part, ':')) {
        auto v = numeric_id(part);
        if (!v)
            return false;
        out.push_back(*v);
    }
    return out.size() == n;
}

// Becomes uid:gid for good (real, effective and saved), with no
// supplementary groups: the service user owns the PIN counters and soft
// Keys' stores, and the peer's requests run with no more than that.
bool become(uid_t uid, gid_t gid)
{
    return setgroups(0, nullptr) == 0 && setresgid(gid, gid, gid) == 0 && setresuid(uid, uid, uid) == 0 &&
           geteuid() == uid && getegid() == gid && setresuid(0, 0, 0) != 0;
}

} // namespace

int run_serve_child(const std::string& peer, const std::string& run_as)
{
    std::vector<unsigned long> p, as;
    if (!split_ids(peer, p, 3) || (!run_as.empty() && !split_ids(run_as, as, 2))) {
        log::error("ukeyd --serve-pkcs11: bad arguments");
        return 2;
    }
    // PINs pass through this process: no core dump, no ptrace by the
    // service user's other processes.
    const rlimit none{0, 0};
    setrlimit(RLIMIT_CORE, &none);
    if (!as.empty() && geteuid() == 0 && !become(uid_t(as[0]), gid_t(as[1]))) {
        log::error(std::string("ukeyd: a serving child cannot become the [service] user: ") + strerror(errno));
        return 1;
    }
    prctl(PR_SET_DUMPABLE, 0);
    auto module = client::Module::open(client::default_module_path());
    if (!module) {
        log::error("ukeyd: " + module.error().message);
        return 1;
    }
    auto serve_peer = reinterpret_cast<UKEY_SERVE_PEER>(dlsym(module->dl, UKEY_SERVE_PEER_SYMBOL));
    if (!serve_peer || serve_peer(p[0], p[1], long(p[2])) != CKR_OK) {
        log::error("ukeyd: " + client::default_module_path() + " cannot serve a peer (not ukey's module, or too old)");
        return 1;
    }
    // p11-kit's client opens with its version byte (0); ukey's own
    // clients with a JSON line, for the vendor functions (serve_vendor.h).
    // A connection that says nothing ends here: it would hold one of the
    // peer's (and the machine's) serving children for nothing.
    pollfd pfd{3, POLLIN, 0};
    int ready;
    while ((ready = poll(&pfd, 1, first_byte_timeout_ms)) < 0 && errno == EINTR) {
    }
    if (ready != 1)
        return 0;
    char first = 0;
    ssize_t n;
    while ((n = recv(3, &first, 1, MSG_PEEK)) < 0 && errno == EINTR) {
    }
    if (n == 1 && first == '{')
        return serve_vendor(module->fl,
                            reinterpret_cast<CK_C_GetInterface>(dlsym(module->dl, "C_GetInterface")), 3);
    // Until the peer hangs up; it calls C_Initialize and C_Finalize itself.
    return p11_kit_remote_serve_module(module->fl, 3, 3) == 0 ? 0 : 1;
}

} // namespace ukey::daemon
