// ukey browser status|enable|disable: ukey's module in this user's
// browsers (Chromium's ~/.pki/nssdb, each Firefox profile), through NSS's
// own tool (modutil), so that websites there can ask for the Key's
// certificate (P12).
#include "cli.h"
#include "nss_dbs.h"
#include "doctor/run_tool.h"

#include <filesystem>
#include <iostream>

#include <unistd.h>

namespace ukey::cli {

namespace {

constexpr const char* modutil = "/usr/bin/modutil";
constexpr const char* certutil = "/usr/bin/certutil";

// Each state: its name in --json and its words on a terminal.
struct State {
    UkeyIn in;
    const char* name;
    const char* text;
};
constexpr State states[] = {
    {UkeyIn::direct, "enabled", "ukey enabled"},
    {UkeyIn::via_p11kit, "enabled-through-p11-kit", "ukey enabled (through p11-kit-proxy)"},
    {UkeyIn::stale, "stale", "ukey registered at a path that is not this ukey's module (moved or reinstalled)"},
    {UkeyIn::absent, "disabled", "ukey not enabled"},
};

const State& state_of(UkeyIn s)
{
    for (const State& st : states)
        if (st.in == s)
            return st;
    return states[3];
}

// The module the browsers are to load: as the tools load it, by its real
// path (NSS keeps the path it is given).
std::string module_file(const Context& ctx)
{
    const std::string path = ctx.module_path.empty() ? client::default_module_path() : ctx.module_path;
    std::string real = real_file(path);
    if (real.empty())
        throw Failure(setup, "ukey's module " + shown(path) + " does not exist: install ukey, or name it with --module");
    return real;
}

std::string home_dir()
{
    const char* home = secure_getenv("HOME");
    if (!home || !*home || home[0] != '/')
        throw Failure(setup, "HOME is not set to a folder: the browsers' databases are found under it");
    return home;
}

// Runs an NSS tool; true when it exited 0. `why`: the last line it wrote
// (NSS's own "ERROR: ..." sentence), for the message.
bool run_nss(std::vector<std::string> argv, std::string& why)
{
    doctor::ToolOutcome how{true, -1};
    auto text = doctor::run_tool({std::move(argv), {}, 30000, 1u << 16}, &how);
    std::string out = text.value_or("it did not run");
    while (!out.empty() && (out.back() == '\n' || out.back() == ' '))
        out.pop_back();
    why = out.substr(out.rfind('\n') == std::string::npos ? 0 : out.rfind('\n') + 1);
    if (how.exit_status < 0 && text)
        why = "it did not finish within 30 s";
    return text && how.exit_status == 0;
}

void need_nss_tools()
{
    if (access(modutil, X_OK) != 0)
        throw Failure(setup, "NSS's modutil is not installed: as root, `apt install libnss3-tools`");
}

// A database in --json: `status` lists its modules, `enable` and `disable`
// say whether they changed it.
nlohmann::json db_json(const NssDb& db, UkeyIn s)
{
    return {{"browser", db.browser}, {"dir", db.dir}, {"exists", db.exists}, {"ukey", state_of(s).name}};
}

std::string db_line(const nlohmann::json& d)
{
    std::string what = states[3].text;
    for (const State& st : states)
        if (d["ukey"] == st.name)
            what = st.text;
    if (!d["exists"].get<bool>())
        what = "no database yet (the browser was never started)";
    return d["browser"].get<std::string>() + ": " + what + " [" + shown(d["dir"].get<std::string>()) + "]";
}

void status(Context& ctx)
{
    const std::string module = module_file(ctx);
    const bool p11kit = ukey_registered_with_p11kit();
    nlohmann::json doc = {{"module", module}, {"browsers", nlohmann::json::array()}};
    for (const auto& db : browser_dbs(home_dir())) {
        auto j = db_json(db, ukey_in(db, module, p11kit));
        j["modules"] = nlohmann::json::array();
        for (const auto& m : db.modules)
            j["modules"].push_back({{"name", m.name}, {"library", m.library}});
        doc["browsers"].push_back(std::move(j));
    }
    ctx.print_list(doc, "browsers", "", &db_line);
}

// Removes ukey's entries (whatever path they name) from one database.
void remove_ukey(const NssDb& db)
{
    for (const auto& m : db.modules) {
        if (!names_ukey_module(m.library))
            continue;
        std::string out;
        if (!run_nss({modutil, "-force", "-dbdir", "sql:" + db.dir, "-delete", m.name}, out))
            throw Failure(failure, db.browser + ": modutil could not remove the module '" + shown(m.name) +
                                       "': " + shown(out) + " (close the browser and try again)");
    }
}

void enable(Context& ctx)
{
    need_nss_tools();
    const std::string module = module_file(ctx);
    const bool p11kit = ukey_registered_with_p11kit();
    nlohmann::json doc = {{"module", module}, {"browsers", nlohmann::json::array()}};
    for (auto db : browser_dbs(home_dir())) {
        UkeyIn s = db.exists ? ukey_in(db, module, p11kit) : UkeyIn::absent;
        bool changed = false;
        if (!db.exists && db.chromium) {
            // Chromium uses the database it finds, and makes it only on its
            // first start: made now (empty password, as Chromium does).
            std::error_code ec;
            std::filesystem::create_directories(db.dir, ec);
            std::filesystem::permissions(db.dir, std::filesystem::perms::owner_all, ec);
            std::string out;
            if (!run_nss({certutil, "-N", "-d", "sql:" + db.dir, "--empty-password"}, out))
                throw Failure(failure, db.browser + ": certutil could not create the database: " + shown(out));
            db.exists = true;
        }
        if (s == UkeyIn::stale)
            remove_ukey(db);
        if (s == UkeyIn::stale || s == UkeyIn::absent) {
            std::string out;
            if (!run_nss({modutil, "-force", "-dbdir", "sql:" + db.dir, "-add", "ukey", "-libfile", module}, out))
                throw Failure(failure, db.browser + ": modutil could not add ukey's module: " + shown(out) +
                                           " (close the browser and try again)");
            s = UkeyIn::direct;
            changed = true;
        }
        auto j = db_json(db, s);
        j["changed"] = changed;
        doc["browsers"].push_back(std::move(j));
    }
    ctx.print(doc, [&] {
        for (const auto& d : doc["browsers"])
            std::cout << db_line(d) << (d["changed"].get<bool>() ? " (now)" : "") << '\n';
        std::cout << "Restart the browsers so that they load it; websites then offer the Key's certificates.\n";
    });
}

void disable(Context& ctx)
{
    need_nss_tools();
    nlohmann::json doc = {{"browsers", nlohmann::json::array()}};
    for (const auto& db : browser_dbs(home_dir())) {
        if (!db.exists)
            continue;
        const UkeyIn s = ukey_in(db, {}, false);
        remove_ukey(db);
        auto j = db_json(db, UkeyIn::absent);
        j["changed"] = s != UkeyIn::absent;
        doc["browsers"].push_back(std::move(j));
    }
    ctx.print(doc, [&] {
        for (const auto& d : doc["browsers"])
            std::cout << db_line(d) << (d["changed"].get<bool>() ? " (now)" : "") << '\n';
    });
}

} // namespace

void add_browser(CLI::App& app, Context& ctx)
{
    auto* b = app.add_subcommand("browser", "Register ukey's module in this user's browsers (Chromium, Firefox)");
    b->require_subcommand(1);
    b->add_subcommand("status", "Which browser databases load ukey's module")->callback([&ctx] { status(ctx); });
    b->add_subcommand("enable", "Add ukey's module to every browser database of this user (restart the browsers)")
        ->callback([&ctx] { enable(ctx); });
    b->add_subcommand("disable", "Remove ukey's module from every browser database of this user")
        ->callback([&ctx] { disable(ctx); });
}

} // namespace ukey::cli
