// ukey: the admin CLI for USB Keys. It goes through libukey-pkcs11.so like
// any application, so it sees the same PIN policy, and needs no daemon.
#include "cli.h"
#include "token/docs.h"

#include "client/messages.h"

#include <algorithm>
#include <cctype>
#include <iostream>
#include <set>
#include <sys/prctl.h>
#include <sys/resource.h>

using namespace ukey::cli;

namespace {

void collect_names(const CLI::App& app, std::set<std::string>& names)
{
    for (const CLI::App* sub : app.get_subcommands({})) {
        names.insert(sub->get_name());
        collect_names(*sub, names);
    }
}

// CLI11's messages quote the arguments they did not expect. Someone who
// typed a PIN on the command line (ukey pin verify --pin 1234) must not see
// it echoed into a terminal log: every word that is not an option name or a
// command is masked.
std::string scrub(std::string msg, int argc, char** argv, const CLI::App& app)
{
    std::set<std::string> names;
    collect_names(app, names);
    std::vector<std::string> secret;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a.rfind("-", 0) == 0) {
            auto eq = a.find('=');
            if (eq != std::string::npos && eq + 1 < a.size())
                secret.push_back(a.substr(eq + 1));
        } else if (!names.count(a)) {
            secret.push_back(a);
        }
    }
    std::sort(secret.begin(), secret.end(), [](const auto& x, const auto& y) { return x.size() > y.size(); });
    // Whole words only: CLI11 quotes what was typed as it was, and a short
    // word ("x") must not mask the middle of CLI11's own ("excludes").
    auto alnum = [&](std::size_t i) { return i < msg.size() && std::isalnum(static_cast<unsigned char>(msg[i])); };
    for (const auto& word : secret) {
        if (word.empty())
            continue;
        for (auto at = msg.find(word); at != std::string::npos;) {
            if ((at > 0 && alnum(at - 1)) || alnum(at + word.size())) {
                at = msg.find(word, at + 1);
                continue;
            }
            msg.replace(at, word.size(), "...");
            at = msg.find(word, at + 3);
        }
    }
    return msg;
}

// A word where a command was expected that names none, if any: walks the
// words down the command tree while they name commands.
std::string unknown_command(int argc, char** argv, CLI::App& app)
{
    CLI::App* node = &app;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--module") {
            ++i;
            continue;
        }
        if (a.rfind("-", 0) == 0)
            continue;
        if (node->get_subcommands({}).empty())
            return {}; // a positional argument, such as KEY
        CLI::App* next = nullptr;
        for (CLI::App* sub : node->get_subcommands({}))
            if (sub->get_name() == a)
                next = sub;
        if (!next)
            return a;
        node = next;
    }
    return {};
}

// The last words: a failure on stderr, one line, escaped whole (ukey's
// sentences quote labels and names from Keys and certificates, CLI11's quote
// what was typed), then its list, one escaped line per item.
void say(const std::string& sentence, const std::vector<std::string>& lines = {})
{
    std::string out = "ukey: " + shown(sentence) + "\n";
    for (const auto& l : lines)
        out += "  " + shown(l) + "\n";
    std::cerr << out;
}

} // namespace

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
    app.add_flag("--json", ctx.json, "print results as JSON (schema in " UKEY_DOC("cli.md") ")");
    app.add_flag("-q,--quiet", ctx.quiet, "no progress messages");
    app.footer("Exit codes: 0 ok, 1 failure, 2 usage, 3 no Key, 4 several Keys match, 5 wrong PIN, 6 PIN locked,\n"
               "7 PIN must be changed, 8 Key error, 9 not found, 10 ukey not set up, 11 cancelled, 12 bad input,\n"
               "13 CA error, 14 renewal incomplete (run `ukey renew --resume`), 15 ukeyd not running,\n"
               "16 audit log fails verification, 17 doctor: warnings, 18 doctor: problems,\n"
               "19 a private key cannot leave the Key (key export).\n"
               "See ukey(1), ukey.conf(5) and " UKEY_DOC_DIR ".");

    add_list(app, ctx);
    add_info(app, ctx);
    add_init(app, ctx);
    add_pin(app, ctx);
    add_key(app, ctx);
    add_cert(app, ctx);
    add_csr(app, ctx);
    add_renew(app, ctx);
    add_daemon(app, ctx);
    add_audit(app, ctx);
    add_doctor(app, ctx);
    add_browser(app, ctx);
    add_backend(app, ctx);

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        if (e.get_exit_code() == 0)
            return app.exit(e);
        const std::string msg = e.what();
        std::string told = scrub(msg, argc, argv, app);
        if (std::string cmd = unknown_command(argc, argv, app); !cmd.empty() && cmd.size() <= 32)
            told = "unknown command '" + cmd + "'"; // a command name, never a PIN's place
        say(told);
        std::cerr << "(run `ukey --help` or `ukey COMMAND --help`)\n";
        if (told.find("...") != std::string::npos)
            std::cerr << "(words were hidden: PINs are never given on the command line; use --pin-fd, --pin-file "
                         "or the prompt)\n";
        return usage;
    } catch (const Failure& f) {
        if (ctx.json && !ctx.json_error_done) {
            nlohmann::json err = {{"code", static_cast<int>(f.code)}, {"message", f.what()}};
            err["ckr"] = f.rv == CKR_OK ? nlohmann::json(nullptr) : nlohmann::json(ukey::client::ckr_name(f.rv));
            std::cout << json_text(nlohmann::json{{"error", err}}) << std::endl;
        }
        say(f.sentence, f.lines);
        return f.code;
    } catch (const std::exception& e) {
        say(e.what());
        return failure;
    }
    return ctx.exit_code;
}
