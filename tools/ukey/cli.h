// What every ukey command shares: options, output, failures.
#pragma once

#include "token/escape.h"
#include "exit_codes.h"
#include "client/module.h"
#include "client/secret.h"
#include "client/x509.h"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace ukey::cli {

// Human output: every value that comes from a Key, a certificate, a CA, the
// daemon or a file goes through shown() on its way to the terminal
// (token/escape.h: control characters, C1, bidi overrides and invalid UTF-8
// are shown escaped; line breaks are ukey's own).
inline std::string shown(std::string_view value)
{
    return escape::printable(value);
}

// JSON output: every document goes out through this, one line (indent < 0)
// or indented. Invalid UTF-8 becomes U+FFFD (a GBK label never makes the
// dump throw), and the result holds no byte a terminal acts on.
std::string json_text(const nlohmann::json& doc, int indent = 2);

// A command's failure: one plain sentence (cause and fix) and an exit code.
// `lines` (e.g. the Keys a selection could mean) are printed one per line
// below the sentence, each escaped on its own; what() is the sentence with
// the lines appended, as --json reports it.
struct Failure : std::runtime_error {
    Failure(Exit code, const std::string& message, CK_RV rv = CKR_OK, std::vector<std::string> lines = {})
        : std::runtime_error(with_lines(message, lines)), code(code), rv(rv), sentence(message),
          lines(std::move(lines)) {}
    Exit code;
    CK_RV rv;
    std::string sentence;
    std::vector<std::string> lines;

private:
    static std::string with_lines(std::string s, const std::vector<std::string>& lines)
    {
        for (const auto& l : lines)
            s += "\n  " + l;
        return s;
    }
};

// Throws a Failure for any CK_RV but CKR_OK.
void check(CK_RV rv, const std::string& doing);
// Throws an Error as a Failure.
[[noreturn]] inline void throw_failure(const Error& e)
{
    throw Failure(e.rv == CKR_OK ? failure : exit_for(e.rv), e.message, e.rv);
}
// Unwraps a Result or throws its error as a Failure.
template <class T>
T must(Result<T> r)
{
    if (!r)
        throw_failure(r.error());
    return std::move(r.value());
}
inline void must(const Result<void>& r)
{
    if (!r)
        throw_failure(r.error());
}

// Where a PIN comes from: a descriptor, a file, or else the terminal.
struct PinSource {
    int fd = -1;
    std::string file;
    std::string file_option = {}; // "--pin-file": how messages name the file (never by its path)
};

struct Context {
    std::string module_path;
    bool json = false;
    bool quiet = false;
    bool json_error_done = false; // the command already printed its own JSON for the failure
    Exit exit_code = ok;          // a command that succeeds with a verdict (ukey doctor) sets it
    std::unique_ptr<client::Module> module_;

    // Loads and initialises libukey-pkcs11.so on first use (in service
    // mode, p11-kit's client of the service).
    const client::Module& module();
    // Service mode, for this user, unless a module is named (--module,
    // UKEY_MODULE): the service's socket (docs/service-mode.md, "The ukey
    // command").
    std::optional<std::filesystem::path> service_socket() const;
    // Prints the result: `doc` as JSON with --json, else `text()`.
    void print(const nlohmann::json& doc, const std::function<void()>& text) const;
    // A list command's result: `doc` with --json, else one line(entry) per
    // entry of doc[field], or `none` when there is none.
    void print_list(const nlohmann::json& doc, const char* field, const std::string& none,
                    std::string (*line)(const nlohmann::json&)) const;
    // A progress note on stderr, only on a terminal and not with --json.
    void progress(const std::string& what) const;
};

// Reads one PIN; `what` names it in the prompt ("user PIN", "SO PIN").
client::Secret read_pin(const PinSource& src, const std::string& what);
// Reads a new PIN: from the source, or twice from the terminal.
client::Secret read_new_pin(const PinSource& src, const std::string& what);
// Checks a new PIN against the token's length limits and the [pin] rules of
// ukey.conf before anything is changed (the module checks again).
// `doing` starts the message ("changing the user PIN").
void check_new_pin(const client::KeyInfo& k, const client::Secret& pin, const std::string& doing, bool trivial_ok);
// Adds --<name>-fd and --<name>-file options to `cmd`.
void add_pin_options(CLI::App* cmd, PinSource& src, const std::string& name, const std::string& what);

// Picks the Key named by `spec` (RFC 7512 URI, label, serial or slot ID;
// empty: the only Key present). `want_uninitialised` prefers a blank Key when
// no spec is given (ukey init).
client::KeyInfo select_key(Context& ctx, const std::string& spec, bool want_uninitialised = false);

// Asks on the terminal: the lines (each escaped) then "[y/N]".
enum class Answer { yes, no, no_terminal };
Answer ask(const std::vector<std::string>& lines);
inline bool confirm(const std::vector<std::string>& lines)
{
    return ask(lines) == Answer::yes;
}

// Before a deletion: unless `yes`, asks on the terminal (`heading`, the
// line of each item, then `question`) and throws Failure(cancelled,
// `refused`) unless the answer is yes.
void confirm_deletion(bool yes, const std::string& heading, const nlohmann::json& items,
                      std::string (*line)(const nlohmann::json&), const std::string& question,
                      const std::string& refused);

// JSON for one Key (the schema in docs/cli.md).
nlohmann::json key_json(const client::KeyInfo& k);

// Opens a session on `k` and logs the user in with the PIN from `src`.
std::unique_ptr<client::Session> user_session(Context& ctx, const client::KeyInfo& k, const PinSource& src,
                                              bool read_write);
// Parses an id option (--id, --key): hex digits, colons and spaces allowed.
client::Bytes parse_id(const std::string& text, const std::string& option);

// Command registration: each cmd_*.cpp adds its subcommands.
void add_list(CLI::App& app, Context& ctx);
void add_info(CLI::App& app, Context& ctx);
void add_init(CLI::App& app, Context& ctx);
void add_pin(CLI::App& app, Context& ctx);
void add_cert(CLI::App& app, Context& ctx);
void add_key(CLI::App& app, Context& ctx);
void add_csr(CLI::App& app, Context& ctx);
void add_renew(CLI::App& app, Context& ctx); // after add_cert: adds `cert superseded`
void add_daemon(CLI::App& app, Context& ctx); // status, watch (cmd_daemon.cpp)
void add_audit(CLI::App& app, Context& ctx);  // audit show, audit verify (cmd_audit.cpp)
void add_doctor(CLI::App& app, Context& ctx); // doctor (cmd_doctor.cpp, doctor/)
void add_browser(CLI::App& app, Context& ctx); // browser status|enable|disable (cmd_browser.cpp)
void add_backend(CLI::App& app, Context& ctx); // backend list|add|hide|remove (cmd_backend.cpp)

} // namespace ukey::cli
