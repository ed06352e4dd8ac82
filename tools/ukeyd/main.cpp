// ukeyd: the ukey management daemon (docs/ukeyd.md). Runs in the
// foreground, logs to stderr (the journal under systemd); SIGTERM ends it,
// SIGHUP reloads the config. `ukeyd --scan` is its own scanner child.
#include "backend_wait.h"
#include "daemon.h"
#include "scan.h"
#include "serve_child.h"

#include "tool_config.h"
#include "token/file_trust.h"
#include "token/log.h"
#include "token/escape.h"
#include "client/module.h"

#include <CLI/CLI.hpp>

#include <cstdlib>
#include <iostream>

#include <climits>
#include <unistd.h>

namespace {

std::string self_exe()
{
    char buf[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    return n > 0 ? std::string(buf, size_t(n)) : std::string("/usr/sbin/ukeyd");
}

} // namespace

int main(int argc, char** argv)
{
    try {
        CLI::App app{"ukeyd: watches Keys (PC/SC readers and PKCS#11 backends), tells subscribers on a local "
                     "socket, runs hooks and watches certificate expiry. See ukeyd(8) and ukey.conf(5)."};
        std::string config, level;
        std::string wait_backend, serve_peer, serve_as;
        bool scan = false, version = false;
        app.add_option("-c,--config", config, "config file (default: $UKEY_CONF, else /etc/ukey/ukey.conf)");
        app.add_option("--log-level", level, "error, warning, info (default) or debug");
        app.add_flag("--scan", scan, "internal: scan the backends once, print JSON, exit")->group("");
        app.add_option("--wait-backend", wait_backend, "internal: block in a backend's C_WaitForSlotEvent")
            ->group("");
        app.add_option("--serve-pkcs11", serve_peer, "internal: serve libukey-pkcs11.so on fd 3 to uid:gid:pid")
            ->group("");
        app.add_option("--serve-as", serve_as, "internal: with --serve-pkcs11, the uid:gid to run as")->group("");
        app.add_flag("--version", version, "print the version");
        CLI11_PARSE(app, argc, argv);
        if (version) {
            std::cout << "ukeyd " UKEY_VERSION "\n";
            return 0;
        }
        // ukeyd runs hooks, backends and `ukey renew` for every user's Keys,
        // usually as root: a config, module or hook another user could
        // have written is refused, whatever user ukeyd runs as.
        ukey::refuse_untrusted_files();
        // The scanner child and the module it loads read the same file.
        if (!config.empty())
            setenv("UKEY_CONF", config.c_str(), 1);
        if (!wait_backend.empty())
            return ukey::daemon::run_backend_wait(wait_backend);
        if (!serve_peer.empty())
            return ukey::daemon::run_serve_child(serve_peer, serve_as);
        if (scan)
            return ukey::daemon::run_scan(ukey::client::default_module_path());

        const auto path = ukey::config_path();
        auto cfg = ukey::load_tool_config(path);
        if (!cfg) {
            std::cerr << "ukeyd: " << ukey::escape::printable(cfg.error().message) << "\n";
            return 1;
        }
        ukey::log::Settings s = cfg->log;
        // A daemon's events are its output: info unless told otherwise. The
        // journal takes stderr, so no syslog copy.
        s.level = ukey::log::Level::info;
        s.to_stderr = true;
        s.to_syslog = false;
        if (!level.empty() && !ukey::log::parse_level(level, s.level)) {
            std::cerr << "ukeyd: --log-level must be error, warning, info or debug\n";
            return 2;
        }
        ukey::log::configure(s);
        ukey::daemon::Daemon d(std::move(*cfg), path, self_exe());
        return d.run();
    } catch (const std::exception& e) {
        std::cerr << "ukeyd: " << ukey::escape::printable(e.what()) << "\n";
        return 1;
    }
}
