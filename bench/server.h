// ukey-bench --serve: side B reached over p11-kit's RPC (p11-kit-client.so)
// instead of loading the module: either ukeyd in service mode in front of
// libukey-pkcs11.so (docs/service-mode.md), or `p11-kit server` in front of
// SoftHSM2 itself, the anchor the service is held against.
#pragma once

#include <string>
#include <sys/types.h>

namespace ukey_bench {

enum class Serve { none, service, p11kit };

// The config sections ukeyd needs in service mode, for ukey.toml (sockets
// in `dir`; the serving children run as this user).
std::string service_config(const std::string& dir);

class Server {
public:
    // Starts the server for `kind` on the bench's folder `dir`, and waits
    // (20 s at most) until its socket is there; throws on failure.
    // ukeyd: the daemon binary; module: libukey-pkcs11.so; softhsm: SoftHSM2.
    Server(Serve kind, const std::string& dir, const std::string& ukeyd, const std::string& module,
           const std::string& softhsm);
    ~Server(); // SIGTERM, then waits
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    // What P11_KIT_SERVER_ADDRESS is to be.
    const std::string& address() const { return address_; }

private:
    pid_t pid_ = -1;
    std::string address_;
};

// p11-kit-client.so, from p11-kit's module folder.
std::string p11kit_client_module();

}  // namespace ukey_bench
