// ukey browser status|enable|disable: ukey's module in this user's
// browsers (Chromium's ~/.pki/nssdb, each Firefox profile), through NSS's
// own tool (modutil), so that websites there can ask for the Key's
// certificate (P12).
#include "browser_policy.h"
#include "cli.h"
#include "token/config.h"
#include "nss_dbs.h"
#include "doctor/auto_select.h"
#include "doctor/run_tool.h"

#include "client/cert_details.h"
#include "client/certs.h"
#include "client/names.h"

#include <filesystem>
#include <iostream>

#include <unistd.h>

namespace ukey::cli {

namespace {

using client::X509Ptr;

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
// path (NSS keeps the path it is given). In service mode that is p11-kit's
// proxy, which reaches the service through ukey-remote.module
// (docs/service-mode.md): a browser loading ukey itself would find the
// service's state closed to it.
std::string module_file(const Context& ctx)
{
    const std::string path = ctx.service_socket() ? (system_module_dir().parent_path() / "p11-kit-proxy.so").string()
                             : ctx.module_path.empty()  ? client::default_module_path()
                                                        : ctx.module_path;
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

// --- system-wide (--system, --auto-select): root only --------------------

struct SystemArgs {
    bool system = false;
    std::string auto_select; // a site's URL
    std::string spec, id;    // which Key and certificate (--auto-select)
    bool by_subject = false;
};

void need_root(const char* what)
{
    if (geteuid() != 0)
        throw Failure(setup, std::string(what) + " changes every user's browsers: run it as root");
}

nlohmann::json rule_json(const AutoSelect& r)
{
    return {{"pattern", r.pattern}, {"filter", {{r.field, {{"CN", r.cn}}}}}, {"file", chromium_auto_select}};
}

nlohmann::json system_json(const std::string& module)
{
    nlohmann::json rules = nlohmann::json::array();
    for (const auto& r : auto_select_rules())
        rules.push_back(rule_json(r));
    return {{"firefox", {{"file", firefox_policies}, {"ukey", firefox_state(module)}}}, {"auto_select", rules}};
}

void print_system(Context& ctx, const nlohmann::json& doc)
{
    ctx.print(doc, [&] {
        const auto& ff = doc["system"]["firefox"];
        const std::string state = ff["ukey"];
        const char* text = state_of(UkeyIn::absent).text; // firefox_state: one of the states' names
        for (const State& st : states)
            if (state == st.name)
                text = st.text;
        std::cout << "Firefox, every profile (" << shown(ff["file"].get<std::string>()) << "): " << text
                  << (ff.value("changed", false) ? " (now)" : "") << '\n';
        std::cout << "Chromium reads modules from each user's own database only: every user runs `ukey browser "
                     "enable`.\n";
        for (const auto& r : doc["system"]["auto_select"])
            std::cout << "Chromium picks, on " << shown(r["pattern"].get<std::string>()) << ", the certificate whose "
                      << (r["filter"].contains("ISSUER") ? "issuer" : "subject") << " is CN="
                      << shown((r["filter"].contains("ISSUER") ? r["filter"]["ISSUER"] : r["filter"]["SUBJECT"])["CN"]
                                   .get<std::string>())
                      << '\n';
        if (doc.contains("others_match") && doc["others_match"].get<int>() > 0)
            std::cout << "Warning: " << doc["others_match"].get<int>()
                      << " certificate(s) on other Keys match that filter too, so Chromium may pick one of them "
                         "when both Keys are in: use --by-subject.\n";
    });
}

// The certificate of `a.spec` that the rule is to pick, and the rule.
AutoSelect make_rule(Context& ctx, const SystemArgs& a, X509Ptr& chosen)
{
    const std::string pattern = auto_select_pattern(a.auto_select);
    client::KeyInfo k = select_key(ctx, a.spec);
    auto s = must(client::Session::open(ctx.module(), k.slot, false));
    std::vector<X509Ptr> candidates;
    std::vector<std::string> lines;
    for (const auto& c : must(client::read_certificates(*s))) {
        X509Ptr x = c.parse();
        if (!x || client::cert_details(x.get()).is_ca)
            continue;
        if (!a.id.empty() && c.id != parse_id(a.id, "--id"))
            continue;
        lines.push_back("--id " + client::to_hex(c.id) + ": " + shown(client::common_name(X509_get_subject_name(x.get()))));
        candidates.push_back(std::move(x));
    }
    if (candidates.empty())
        throw Failure(not_found, "Key '" + shown(k.label()) + "' holds no " + (a.id.empty() ? "" : "such ") +
                                     "certificate of its own to pick (`ukey cert list`)");
    if (candidates.size() > 1)
        throw Failure(ambiguous, "Key '" + shown(k.label()) + "' holds several certificates: name one with --id",
                      CKR_OK, lines);
    chosen = std::move(candidates.front());
    AutoSelect r{pattern, a.by_subject ? "SUBJECT" : "ISSUER",
                 client::common_name(a.by_subject ? X509_get_subject_name(chosen.get())
                                                  : X509_get_issuer_name(chosen.get()))};
    if (r.cn.empty())
        throw Failure(bad_input, std::string("the certificate's ") + (a.by_subject ? "subject" : "issuer") +
                                     " has no CN to filter on" + (a.by_subject ? "" : ": use --by-subject"));
    return r;
}

// How many certificates on the other Keys present the rule picks too (P13).
int others_matching(Context& ctx, const AutoSelect& r, X509* chosen)
{
    doctor::AutoSelectRule rule{chromium_auto_select, r.pattern, std::nullopt, std::nullopt};
    (r.field == "ISSUER" ? rule.issuer : rule.subject) = doctor::PrincipalFilter{r.cn, {}, {}, {}};
    int n = 0;
    auto keys = client::list_keys(ctx.module());
    if (!keys)
        return 0;
    for (const auto& k : *keys) {
        auto s = client::Session::open(ctx.module(), k.slot, false);
        if (!s)
            continue;
        auto certs = client::read_certificates(**s);
        if (!certs)
            continue;
        for (const auto& c : *certs) {
            X509Ptr x = c.parse();
            if (x && X509_cmp(x.get(), chosen) != 0 && !client::cert_details(x.get()).is_ca &&
                doctor::cert_matches(rule, x.get()))
                ++n;
        }
    }
    return n;
}

void system_status(Context& ctx)
{
    const std::string module = module_file(ctx);
    print_system(ctx, {{"module", module}, {"system", system_json(module)}});
}

void system_change(Context& ctx, const SystemArgs& a, bool enable)
{
    need_root(a.system ? "--system" : "--auto-select");
    const std::string module = module_file(ctx);
    nlohmann::json doc = {{"module", module}};
    bool ff_changed = false;
    if (a.system)
        ff_changed = set_firefox(module, enable);
    nlohmann::json changed_rule;
    if (!a.auto_select.empty()) {
        if (enable) {
            X509Ptr chosen(nullptr, X509_free);
            const AutoSelect r = make_rule(ctx, a, chosen);
            changed_rule = rule_json(r);
            changed_rule["changed"] = set_auto_select(r);
            doc["others_match"] = others_matching(ctx, r, chosen.get());
        } else {
            const std::string pattern = auto_select_pattern(a.auto_select);
            changed_rule = {{"pattern", pattern}, {"changed", remove_auto_select(pattern)}};
        }
    } else if (a.system && !enable) {
        remove_auto_select("");
    }
    doc["system"] = system_json(module);
    doc["system"]["firefox"]["changed"] = ff_changed;
    if (!changed_rule.is_null())
        doc["auto_select_changed"] = changed_rule;
    print_system(ctx, doc);
    if (!ctx.json)
        std::cout << "Restart the browsers so that they read it.\n";
}

} // namespace

void add_browser(CLI::App& app, Context& ctx)
{
    auto* b = app.add_subcommand("browser", "Register ukey's module in this user's browsers (Chromium, Firefox)");
    b->require_subcommand(1);
    auto sys = std::make_shared<SystemArgs>();
    auto* st = b->add_subcommand("status", "Which browser databases load ukey's module");
    st->add_flag("--system", sys->system, "The system-wide policies instead: Firefox's policies.json, Chromium's "
                                          "certificate auto-selection");
    st->callback([&ctx, sys] { sys->system ? system_status(ctx) : status(ctx); });

    auto* en = b->add_subcommand("enable",
                                 "Add ukey's module to every browser database of this user (restart the browsers)");
    en->add_flag("--system", sys->system, "As root: in every Firefox profile of every user (policies.json)");
    en->add_option("--auto-select", sys->auto_select,
                   "As root: Chromium picks the Key's certificate on this https:// site by itself");
    en->add_option("key", sys->spec, "With --auto-select: the Key whose certificate is picked");
    en->add_option("--id", sys->id, "With --auto-select: which certificate of the Key (hex CKA_ID)");
    en->add_flag("--by-subject", sys->by_subject,
                 "With --auto-select: filter on the certificate's subject, not its issuer (Keys from one CA)");
    en->callback([&ctx, sys] {
        if (!sys->system && sys->auto_select.empty()) {
            if (!sys->spec.empty() || !sys->id.empty() || sys->by_subject)
                throw Failure(usage, "KEY, --id and --by-subject go with --auto-select");
            enable(ctx);
        } else {
            system_change(ctx, *sys, true);
        }
    });

    auto* dis = b->add_subcommand("disable", "Remove ukey's module from every browser database of this user");
    dis->add_flag("--system", sys->system,
                  "As root: from Firefox's policies.json (and every profile), and ukey's auto-selection rules");
    dis->add_option("--auto-select", sys->auto_select, "As root: only the auto-selection rule of this site");
    dis->callback([&ctx, sys] {
        if (!sys->system && sys->auto_select.empty())
            disable(ctx);
        else
            system_change(ctx, *sys, false);
    });
}

} // namespace ukey::cli
