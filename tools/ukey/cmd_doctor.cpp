// ukey doctor: every check of doctor/ at once, one plain sentence per
// problem found, worst first (docs/doctor.md).
#include "cli.h"
#include "token/docs.h"
#include "doctor/doctor.h"
#include "doctor/fix.h"
#include "doctor/tls_probe.h"

#include <algorithm>
#include <iostream>

namespace ukey::cli {

namespace {

using doctor::remedy_text;
using doctor::Severity;

struct DoctorArgs {
    std::string key;
    bool list_checks = false;
    bool offline = false;
    bool fix = false;
    bool yes = false;
    std::string url;
    PinSource pin;
};

// docs/doctor.md's table, from the checks themselves (a test compares the two).
void list_checks()
{
    std::cout << "| id | problem | looks for | usual cause | fix |\n|---|---|---|---|---|\n";
    for (const auto* c : doctor::checks())
        std::cout << "| `" << c->id << "` | " << c->problem << " | " << c->title << " | " << c->cause << " | "
                  << c->fix << " |\n";
}

std::vector<doctor::Finding> examine(Context& ctx, const DoctorArgs& a, std::size_t& keys)
{
    doctor::Facts facts =
        doctor::gather(ctx, a.key, a.offline, a.pin.fd >= 0 || !a.pin.file.empty() ? &a.pin : nullptr);
    facts.fixing = a.fix;
    if (!a.url.empty()) {
        facts.server = doctor::probe_server(a.url);
        for (auto& r : doctor::read_auto_select(doctor::chromium_policy_dirs))
            if (doctor::url_matches(r.pattern, a.url))
                facts.server->auto_select.push_back(std::move(r));
    }
    keys = facts.keys.size();
    std::vector<doctor::Finding> found;
    for (const auto* c : doctor::checks())
        doctor::run(*c, facts, found);
    std::stable_sort(found.begin(), found.end(),
                     [](const auto& x, const auto& y) { return x.severity > y.severity; });
    return found;
}

std::optional<Severity> worst_of(const std::vector<doctor::Finding>& found)
{
    return found.empty() ? std::nullopt : std::optional<Severity>(found.front().severity);
}

nlohmann::json findings_json(const std::vector<doctor::Finding>& found)
{
    nlohmann::json list = nlohmann::json::array();
    for (const auto& f : found)
        list.push_back({{"id", f.id},
                        {"problem", f.problem},
                        {"severity", doctor::severity_name(f.severity)},
                        {"key", f.key.empty() ? nlohmann::json(nullptr) : nlohmann::json(f.key)},
                        {"what", f.what},
                        {"fix", f.fix.empty() ? nlohmann::json(nullptr) : nlohmann::json(f.fix)},
                        {"remedy", f.remedy.empty() ? nlohmann::json(nullptr) : nlohmann::json(remedy_text(f))}});
    return list;
}

void print_report(const std::vector<doctor::Finding>& found, std::size_t keys_checked)
{
    const auto worst = worst_of(found);
    const std::string keys = std::to_string(keys_checked) + (keys_checked == 1 ? " Key" : " Keys");
    if (!worst || *worst == Severity::note)
        std::cout << "Everything looks fine (" << keys << " checked).\n";
    else
        std::cout << "ukey doctor found " << found.size() << (found.size() == 1 ? " thing" : " things")
                  << " to look at (" << keys << " checked):\n";
    for (const auto& f : found) {
        // The sentences hold only escaped values from Keys and files (each
        // check escapes what it quotes).
        std::cout << "\n"
                  << doctor::severity_tag(f.severity) << "  " << (f.key.empty() ? "" : f.key + ": ") << f.what
                  << ".\n";
        if (!f.fix.empty())
            std::cout << "  What to do: " << f.fix << ".\n";
        if (!f.remedy.empty())
            std::cout << "  `ukey doctor --fix` can do it: " << remedy_text(f) << "\n";
        std::cout << "  [" << f.id << "]\n";
    }
}

// --fix: each remedy, asked for on the terminal (or all, with --yes).
nlohmann::json fix(Context& ctx, const DoctorArgs& a, const std::vector<doctor::Finding>& found)
{
    nlohmann::json done = nlohmann::json::array();
    const doctor::FixOptions o{ctx.module_path, a.pin.file};
    for (const auto& f : found) {
        if (f.remedy.empty())
            continue;
        std::string result = "skipped";
        int status = 0;
        const Answer ok = a.yes ? Answer::yes
                                : ask({(f.key.empty() ? "" : f.key + ": ") + f.what,
                                       "Fix it now by running `" + remedy_text(f) + "`?"});
        if (ok == Answer::no_terminal)
            throw Failure(cancelled, "--fix asks before each fix and there is no terminal: add --yes to fix without "
                                     "asking");
        if (ok == Answer::yes) {
            status = doctor::apply(f, o);
            result = status == 0 ? "done" : "failed";
            if (!ctx.json)
                std::cout << (status == 0 ? "Fixed: " : "The fix failed (exit " + std::to_string(status) + "): ")
                          << remedy_text(f) << "\n";
        }
        done.push_back({{"id", f.id}, {"remedy", remedy_text(f)}, {"result", result},
                        {"exit", result == "skipped" ? nlohmann::json(nullptr) : nlohmann::json(status)}});
    }
    return done;
}

void run(Context& ctx, const DoctorArgs& a)
{
    if (a.list_checks) {
        list_checks();
        return;
    }
    if (!a.url.empty() && !doctor::probe_url_valid(a.url))
        throw Failure(usage, "--url takes the https:// address of the site that asks for the Key's certificate");
    if (!a.url.empty() && a.offline)
        throw Failure(usage, "--url connects to the site: it cannot be used with --offline");
    if (a.fix && a.pin.fd >= 0)
        throw Failure(usage, "--fix passes the PIN on to the commands it runs: give it with --pin-file (or let them "
                             "ask on the terminal), not --pin-fd");
    std::size_t keys = 0;
    auto found = examine(ctx, a, keys);
    nlohmann::json doc;
    if (a.fix) {
        if (!ctx.json)
            print_report(found, keys);
        const bool any = std::any_of(found.begin(), found.end(), [](const auto& f) { return !f.remedy.empty(); });
        if (!ctx.json)
            std::cout << (any ? "\n" : "\nNothing here is for `--fix`: the findings say what to do.\n");
        if (!any) {
            doc["fixes"] = nlohmann::json::array();
        } else {
            doc["fixes"] = fix(ctx, a, found);
            ctx.module_.reset(); // see the Keys as the fixes left them
            found = examine(ctx, a, keys);
            if (!ctx.json)
                std::cout << "\nAfter the fixes:\n";
        }
    }
    const auto worst = worst_of(found);
    doc["keys_checked"] = keys;
    doc["worst"] = worst ? nlohmann::json(doctor::severity_name(*worst)) : nlohmann::json(nullptr);
    doc["findings"] = findings_json(found);
    ctx.print(doc, [&] {
        if (!a.fix || doc["fixes"].size() > 0)
            print_report(found, keys);
    });
    if (worst == Severity::problem)
        ctx.exit_code = doctor_problems;
    else if (worst == Severity::warning)
        ctx.exit_code = doctor_warnings;
}

} // namespace

void add_doctor(CLI::App& app, Context& ctx)
{
    static DoctorArgs a;
    auto* d = app.add_subcommand("doctor", "Look for every known problem with the Keys and ukey's setup, and say "
                                           "what to do; exit 17 for warnings, 18 for problems");
    d->add_option("KEY", a.key, "only this Key (label, serial, slot or pkcs11: URI); default: all");
    add_pin_options(d, a.pin, "pin", "user PIN (optional: to check the private keys too)");
    d->add_flag("--fix", a.fix, "run the safe fixes the findings name (start pcscd, resume a renewal, write a missing CA certificate), asking first");
    d->add_flag("--yes", a.yes, "with --fix: do not ask");
    d->add_flag("--offline", a.offline, "do not fetch anything (revocation lists, OCSP)");
    d->add_option("--url", a.url, "https:// address of a site that asks for the Key's certificate: is it accepted there?");
    d->add_flag("--list-checks", a.list_checks, "print the checks as a Markdown table (the one of " UKEY_DOC("doctor.md") ")");
    d->callback([&ctx] { run(ctx, a); });
}

} // namespace ukey::cli
