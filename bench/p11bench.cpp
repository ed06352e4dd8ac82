// ukey-bench: compares the same PKCS#11 operations through two modules in one
// process run:
//   (A) SoftHSM2 loaded directly, and
//   (B) libukey-pkcs11.so, which forwards to that same SoftHSM2.
//
// Both modules end up sharing one libsofthsm2.so instance (dlopen returns the
// same handle), so they are never initialised at the same time: every
// measurement phase is a complete C_Initialize ... C_Finalize cycle of one
// module, and the phases alternate A/B (ABBA order across rounds) so that
// machine noise hits both sides equally. Each reported number is a median.
//
// The benchmark works in its own private temporary directory (mode 0700)
// holding a fresh SoftHSM2 token directory, softhsm2.conf (via SOFTHSM2_CONF)
// and a ukey config file (via UKEY_CONF); the directory is removed on exit.
//
// p11.*: the modules and the token; phase.h: what is timed; stats.*: medians
// and percentiles; report.*: the table and the JSON; private_dir.*: the
// working folder.

#include "p11.h"
#include "phase.h"
#include "private_dir.h"
#include "report.h"
#include "server.h"
#include "stats.h"

#include <CLI/CLI.hpp>

#include <cmath>
#include <memory>
#include <cstdio>
#include <filesystem>
#include <string>
#include <system_error>
#include <vector>

namespace {

using namespace ukey_bench;

struct UsageError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

void run_phase(const Module& m, int side, const Options& o, std::vector<Measurement>& ms) {
    std::fprintf(stderr, "ukey-bench:   %s ...\n", m.role.c_str());
    Phase p(m);
    ms[0].samples[side].push_back(p.sign_throughput(1, o.seconds));
    ms[1].samples[side].push_back(p.sign_throughput(2, o.seconds));
    for (double v : p.get_session_info(o.iterations, o.batches)) ms[2].samples[side].push_back(v);
    for (double v : p.get_attribute_value(o.iterations, o.batches)) ms[3].samples[side].push_back(v);
    for (double v : p.get_attribute_session_object(o.iterations, o.batches)) {
        ms[4].samples[side].push_back(v);
    }
    for (double v : p.digest64(o.iterations, o.batches)) ms[5].samples[side].push_back(v);
    for (double v : p.login_calls(o.logins)) {
        ms[6].samples[side].push_back(v);
        ms[7].samples[side].push_back(v);
    }
    p.finish();
}

// Paths with a '/' are made absolute for the report and the ukey config; a
// bare file name is left to dlopen's library search.
std::string absolute(const std::string& p) {
    if (p.find('/') == std::string::npos) return p;
    std::error_code ec;
    auto abs = std::filesystem::absolute(p, ec);
    return ec ? p : abs.string();
}

int run(Options o) {
    o.side_b = o.serve == Serve::service ? "via the ukey service"
               : o.serve == Serve::p11kit ? "via p11-kit server (SoftHSM2 behind it)"
                                          : "via ukey";
    o.load_at_start = load_average();
    TempDir dir(temp_base(), "ukey-bench.");
    const std::string d = dir.path().string();
    make_private_dir(d + "/tokens");
    make_private_dir(d + "/state");
    write_file(d + "/softhsm2.conf", "directories.tokendir = " + d + "/tokens\n"
                                     "objectstore.backend = file\n"
                                     "log.level = ERROR\n");
    write_file(d + "/ukey.toml", "state_dir = " + toml_string(d + "/state") + "\n"
                                 "\n"
                                 "[[backend]]\n"
                                 "name = \"softhsm\"\n"
                                 "module = " + toml_string(o.direct_module) + "\n"
                                 "pin_counter = \"ukey\"\n" +
                                 (o.audit ? "" : "\n[audit]\nenabled = false\n") +
                                 (o.serve == Serve::service ? service_config(d) : ""));
    set_env("SOFTHSM2_CONF", d + "/softhsm2.conf");
    set_env("UKEY_CONF", d + "/ukey.toml");

    Module direct{"SoftHSM direct", o.direct_module};
    load(direct);
    std::fprintf(stderr, "ukey-bench: creating token and RSA-2048 key pair\n");
    setup_token(direct);

    // --serve: side B is p11-kit's client of a server started now, on the
    // token just made.
    std::unique_ptr<Server> server;
    if (o.serve != Serve::none) {
        server = std::make_unique<Server>(o.serve, d, o.ukeyd, o.ukey_module, o.direct_module);
        set_env("P11_KIT_SERVER_ADDRESS", server->address());
    }
    Module ukey{o.side_b, o.serve == Serve::none ? o.ukey_module : p11kit_client_module()};
    load(ukey);

    std::vector<Measurement> ms;
    ms.push_back({"sign_rsa2048_sha256_1thread", "RSA-2048 SHA256_RSA_PKCS sign, 1 thread",
                  Kind::Throughput, {}});
    ms.push_back({"sign_rsa2048_sha256_2threads", "RSA-2048 SHA256_RSA_PKCS sign, 2 threads",
                  Kind::Throughput, {}});
    ms.push_back({"C_GetSessionInfo", "C_GetSessionInfo", Kind::Latency, {}});
    ms.push_back({"C_GetAttributeValue_modulus_bits_token_object",
                  "C_GetAttributeValue(MODULUS_BITS, token)", Kind::Latency, {}});
    ms.push_back({"C_GetAttributeValue_label_session_object",
                  "C_GetAttributeValue(LABEL, session obj)", Kind::Latency, {}});
    ms.push_back({"digest_sha256_64B", "C_DigestInit+C_Digest SHA-256, 64 B", Kind::Latency, {}});
    ms.push_back({"C_Login_p50", "C_Login(CKU_USER), right PIN, p50", Kind::Login, {}, 50});
    ms.push_back({"C_Login_p99", "C_Login(CKU_USER), right PIN, p99", Kind::Login, {}, 99});

    for (unsigned r = 0; r < o.rounds; ++r) {
        std::fprintf(stderr, "ukey-bench: round %u/%u\n", r + 1, o.rounds);
        // ABBA order: neither side always runs first in a round.
        if (r % 2 == 0) {
            run_phase(direct, 0, o, ms);
            run_phase(ukey, 1, o, ms);
        } else {
            run_phase(ukey, 1, o, ms);
            run_phase(direct, 0, o, ms);
        }
    }

    if (o.json) {
        print_json(o, ms);
    } else {
        print_table(o, ms);
    }
    std::fflush(stdout);
    return 0;
}


}  // namespace

int main(int argc, char** argv) {
    Options o;
    CLI::App app{"Measures PKCS#11 operations through SoftHSM2 directly and through the ukey\n"
                 "module (which forwards to the same SoftHSM2) and prints both side by side.",
                 "ukey-bench"};
#ifdef UKEY_BENCH_DEFAULT_MODULE
    const std::string built = UKEY_BENCH_DEFAULT_MODULE;
#else
    const std::string built = "none built; required";
#endif
    std::string positional;
    const auto at_least_one = CLI::Range(1.0, 1e15).description("");
    app.add_option("--ukey-module", o.ukey_module, "module under test (default: " + built + ")");
    app.add_option("UKEY_MODULE", positional, "the same as --ukey-module");
    app.add_option("--direct-module", o.direct_module,
                   std::string("SoftHSM2 module (default: ") + UKEY_BENCH_SOFTHSM_MODULE + ")");
    app.add_option("--seconds", o.seconds, "duration of each throughput run (default 3)")
        ->check([](const std::string& s) -> std::string {
            double v = 0;
            try {
                size_t used = 0;
                v = std::stod(s, &used);
                if (used != s.size()) v = 0;
            } catch (const std::exception&) {
                v = 0;
            }
            return v > 0 && v <= 3600 ? "" : "expected a number of seconds in (0, 3600], got \"" + s + "\"";
        });
    app.add_option("--rounds", o.rounds, "A/B rounds; medians are reported (default 3)")->check(at_least_one);
    app.add_option("--iterations", o.iterations, "calls per latency run and round (default 200000)")
        ->check(at_least_one);
    app.add_option("--batches", o.batches, "batches a latency run is split into (default 5)")
        ->check(at_least_one);
    app.add_option("--logins", o.logins, "single C_Login calls timed per phase (default 200)")
        ->check(at_least_one);
    app.add_flag("--min", latency_min,
                 "latency lines report the fastest batch instead of the median "
                 "(robust on a noisy machine: interference only adds time)");
    app.add_flag("--json", o.json, "print the results as JSON");
    bool no_audit = false;
    app.add_flag("--no-audit", no_audit, "ukey without its audit log ([audit] enabled = false): what the log costs");
    std::string serve = "none";
    app.add_option("--serve", serve,
                   "side B over p11-kit's RPC: \"service\" (ukeyd in service mode in front of the ukey module; "
                   "run as a user other than root) or \"p11kit\" (p11-kit server in front of SoftHSM2)")
        ->check(CLI::IsMember({"none", "service", "p11kit"}));
    app.add_option("--ukeyd", o.ukeyd, "ukeyd, for --serve service (default: the one built in this tree)");
    try {
        app.parse(argc, argv);
        if (!positional.empty()) o.ukey_module = positional;
        o.audit = !no_audit;
        o.serve = serve == "service" ? Serve::service : serve == "p11kit" ? Serve::p11kit : Serve::none;
        if (o.ukey_module.empty())
            throw UsageError("no ukey module: pass its path (the module was not built with this tree)");
        if (o.batches > o.iterations) o.batches = static_cast<unsigned>(o.iterations);
        o.direct_module = absolute(o.direct_module);
        o.ukey_module = absolute(o.ukey_module);
        return run(o);
    } catch (const CLI::ParseError& e) {
        if (e.get_exit_code() == 0) return app.exit(e);  // --help
        std::fprintf(stderr, "ukey-bench: %s\n\n%s", e.what(), app.help().c_str());
        return 2;
    } catch (const UsageError& e) {
        std::fprintf(stderr, "ukey-bench: %s\n\n%s", e.what(), app.help().c_str());
        return 2;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "ukey-bench: error: %s\n", e.what());
        return 1;
    }
}
