// ukey doctor: every check of doctor/ at once, one plain sentence per
// problem found, worst first (docs/doctor.md).
#include "cli.h"
#include "doctor/doctor.h"

#include <algorithm>
#include <iostream>

namespace ukey::cli {

namespace {

using doctor::Severity;

struct DoctorArgs {
    std::string key;
    bool list_checks = false;
    bool offline = false;
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

void run(Context& ctx, const DoctorArgs& a)
{
    if (a.list_checks) {
        list_checks();
        return;
    }
    const doctor::Facts facts = doctor::gather(ctx, a.key, a.offline,
                                                 a.pin.fd >= 0 || !a.pin.file.empty() ? &a.pin : nullptr);
    std::vector<doctor::Finding> found;
    for (const auto* c : doctor::checks())
        doctor::run(*c, facts, found);
    std::stable_sort(found.begin(), found.end(),
                     [](const auto& x, const auto& y) { return x.severity > y.severity; });

    std::optional<Severity> worst;
    if (!found.empty())
        worst = found.front().severity;
    nlohmann::json doc;
    doc["keys_checked"] = facts.keys.size();
    doc["worst"] = worst ? nlohmann::json(doctor::severity_name(*worst)) : nlohmann::json(nullptr);
    doc["findings"] = nlohmann::json::array();
    for (const auto& f : found) {
        doc["findings"].push_back({{"id", f.id},
                                   {"problem", f.problem},
                                   {"severity", doctor::severity_name(f.severity)},
                                   {"key", f.key.empty() ? nlohmann::json(nullptr) : nlohmann::json(f.key)},
                                   {"what", f.what},
                                   {"fix", f.fix.empty() ? nlohmann::json(nullptr) : nlohmann::json(f.fix)}});
    }
    ctx.print(doc, [&] {
        const std::string keys = std::to_string(facts.keys.size()) + (facts.keys.size() == 1 ? " Key" : " Keys");
        if (!worst || *worst == Severity::note)
            std::cout << "Everything looks fine (" << keys << " checked).\n";
        else
            std::cout << "ukey doctor found " << found.size()
                      << (found.size() == 1 ? " thing" : " things") << " to look at (" << keys << " checked):\n";
        for (const auto& f : found) {
            // The sentences hold only escaped values from Keys and files
            // (each check escapes what it quotes).
            std::cout << "\n" << doctor::severity_tag(f.severity) << "  " << (f.key.empty() ? "" : f.key + ": ") << f.what << ".\n";
            if (!f.fix.empty())
                std::cout << "  What to do: " << f.fix << ".\n";
            std::cout << "  [" << f.id << "]\n";
        }
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
    d->add_flag("--offline", a.offline, "do not fetch anything (revocation lists)");
    d->add_flag("--list-checks", a.list_checks, "print the checks as a Markdown table (docs/doctor.md)");
    d->callback([&ctx] { run(ctx, a); });
}

} // namespace ukey::cli
