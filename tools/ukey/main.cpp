// ukey: the admin CLI for USB Keys. It goes through libukey-pkcs11.so like
// any application, so it sees the same PIN policy, and needs no daemon.
#include "cli.h"

#include "messages.h"

#include <iostream>
#include <sys/prctl.h>
#include <sys/resource.h>

using namespace ukey::cli;

int main(int argc, char** argv)
{
    // PINs pass through this process: no core dump may hold them.
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    struct rlimit no_core {0, 0};
    setrlimit(RLIMIT_CORE, &no_core);

    Context ctx;
    CLI::App app{"ukey: manage USB Keys (PKCS#11 tokens) through libukey-pkcs11.so.\n"
                 "PINs are asked on the terminal, or read from --*-fd / --*-file; never from the command line."};
    app.name("ukey");
    app.set_version_flag("--version", std::string("ukey ") + UKEY_VERSION);
    app.require_subcommand(1);
    app.fallthrough();
    app.add_option("--module", ctx.module_path, "the PKCS#11 module (default: $UKEY_MODULE, else the installed ukey)");
    app.add_flag("--json", ctx.json, "print results as JSON (schema in docs/cli.md)");
    app.add_flag("-q,--quiet", ctx.quiet, "no progress messages");
    app.footer("Exit codes: 0 ok, 1 failure, 2 usage, 3 no Key, 4 several Keys match, 5 wrong PIN, 6 PIN locked,\n"
               "7 PIN must be changed, 8 Key error, 9 not found, 10 ukey not set up, 11 cancelled, 12 bad input.\n"
               "See ukey(1) and docs/cli.md.");

    add_list(app, ctx);
    add_info(app, ctx);
    add_init(app, ctx);
    add_pin(app, ctx);
    add_key(app, ctx);
    add_cert(app, ctx);
    add_csr(app, ctx);

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        if (e.get_exit_code() == 0)
            return app.exit(e);
        std::cerr << "ukey: " << e.what() << "\n(run `ukey --help` or `ukey COMMAND --help`)\n";
        return usage;
    } catch (const Failure& f) {
        if (ctx.json && !ctx.quiet) {
            nlohmann::json err = {{"code", static_cast<int>(f.code)}, {"message", f.what()}};
            err["ckr"] = f.rv == CKR_OK ? nlohmann::json(nullptr) : nlohmann::json(ukey::client::ckr_name(f.rv));
            std::cout << nlohmann::json{{"error", err}}.dump(2) << std::endl;
        }
        std::cerr << "ukey: " << f.what() << "\n";
        return f.code;
    } catch (const std::exception& e) {
        std::cerr << "ukey: " << e.what() << "\n";
        return failure;
    }
    return ok;
}
