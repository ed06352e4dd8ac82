// ukey audit show | verify: the audit log the module writes (docs/audit.md).
// It reads the files directly: no module, no Key, no daemon.
#include "cli.h"
#include "token/docs.h"

#include "client/messages.h"
#include "token/audit_log.h"
#include "token/config.h"

#include <cstdio>
#include <ctime>
#include <iostream>

namespace ukey::cli {

namespace {

struct AuditArgs {
    std::string key, since, kind;
};

AuditSettings settings()
{
    auto cfg = load_config(config_path());
    if (!cfg)
        throw Failure(setup, "cannot tell where the audit log is: " + cfg.error().message);
    return cfg->audit;
}

std::string utc(std::time_t t)
{
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S.000Z", &tm);
    return buf;
}

// --since: a time ago (30m, 2h, 7d, 1w) or a UTC date or time (2026-12-01,
// 2026-12-01T08:00, 2026-12-01 08:00:30, optional Z), as the records' text.
std::string since_text(const std::string& s)
{
    const std::string bad = "--since takes a time ago (30m, 2h, 7d) or a UTC date or time (2026-12-01, "
                            "2026-12-01T08:00:00), not '" + s + "'";
    if (s.empty() || s.size() > 32)
        throw Failure(usage, bad);
    if (s.find_first_not_of("0123456789") == s.size() - 1 && s.size() > 1 && s.size() <= 10) {
        const std::string units = "smhdw";
        const long long per[] = {1, 60, 3600, 86400, 7 * 86400};
        const auto u = units.find(s.back());
        const long long n = std::stoll(s.substr(0, s.size() - 1));
        if (u == std::string::npos || n > 100LL * 366 * 86400 / per[u])
            throw Failure(usage, bad);
        return utc(std::time(nullptr) - std::time_t(n * per[u]));
    }
    std::tm tm{};
    int used = 0;
    const char* c = s.c_str();
    int got = std::sscanf(c, "%4d-%2d-%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &used);
    if (got != 3 || used != 10)
        throw Failure(usage, bad);
    std::string rest = s.substr(10);
    if (!rest.empty() && (rest[0] == 'T' || rest[0] == ' ')) {
        int n = 0;
        tm.tm_sec = 0;
        got = std::sscanf(rest.c_str() + 1, "%2d:%2d%n", &tm.tm_hour, &tm.tm_min, &n);
        if (got != 2 || n != 5)
            throw Failure(usage, bad);
        rest = rest.substr(6);
        if (!rest.empty() && rest[0] == ':') {
            if (std::sscanf(rest.c_str() + 1, "%2d%n", &tm.tm_sec, &n) != 1 || n != 2)
                throw Failure(usage, bad);
            rest = rest.substr(3);
        }
    }
    if (rest == "Z")
        rest.clear();
    const std::tm want = tm;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    const std::time_t t = timegm(&tm);
    std::tm back{};
    gmtime_r(&t, &back);
    // 2026-02-30 and 25:00 are refused, not moved to another day.
    if (!rest.empty() || back.tm_year + 1900 != want.tm_year || back.tm_mon + 1 != want.tm_mon ||
        back.tm_mday != want.tm_mday || back.tm_hour != want.tm_hour || back.tm_min != want.tm_min ||
        back.tm_sec != want.tm_sec)
        throw Failure(usage, bad);
    return utc(t);
}

std::string kinds_list()
{
    std::string all;
    for (auto k : audit_kinds())
        all += (all.empty() ? "" : ", ") + std::string(audit_kind_name(k));
    return all;
}

nlohmann::json record_json(const AuditRecord& r)
{
    return {{"seq", r.seq},     {"time", r.time},   {"kind", r.kind}, {"key", r.key},
            {"user_type", r.user_type}, {"rv", r.rv}, {"ckr", client::ckr_name(r.rv)}, {"detail", r.detail},
            {"pid", r.pid},     {"uid", r.uid},     {"exe", r.exe},   {"prev", r.prev},
            {"hash", r.hash},   {"file", r.file},   {"line", r.line}};
}

// One line per record; every value escaped (the file is as hostile as the
// Keys it names: anyone who can write it can put escapes in it).
std::string record_text(const AuditRecord& r)
{
    std::string line = shown(r.time) + "  #" + std::to_string(r.seq) + "  " + shown(r.kind);
    if (!r.user_type.empty())
        line += " (" + shown(r.user_type) + ")";
    line += "  " + client::ckr_name(r.rv) + "  key=\"" + shown(r.key) + "\"";
    if (!r.detail.empty())
        line += "  " + shown(r.detail);
    line += "  pid " + std::to_string(r.pid) + " uid " + std::to_string(r.uid) + " " + shown(r.exe);
    return shown(line);
}

void show(Context& ctx, const AuditArgs& a)
{
    AuditFilter f;
    if (!a.kind.empty()) {
        if (!audit_kind_from(a.kind))
            throw Failure(usage, "--kind must be one of " + kinds_list() + ", not '" + a.kind + "'");
        f.kind = a.kind;
    }
    if (!a.key.empty())
        f.key = a.key;
    if (!a.since.empty())
        f.since = since_text(a.since);
    const auto r = must(read_records(settings(), f));
    nlohmann::json list = nlohmann::json::array();
    for (const auto& rec : r.records)
        list.push_back(record_json(rec));
    ctx.print({{"records", list}, {"unreadable", r.unreadable}}, [&] {
        for (const auto& rec : r.records)
            std::cout << record_text(rec) << "\n";
        if (r.records.empty())
            std::cout << "No audit records" << (f.kind || f.key || f.since ? " match." : ".") << "\n";
    });
    if (r.unreadable > 0)
        std::cerr << "ukey: " << r.unreadable
                  << " line(s) of the audit log are not records (damaged?): run `ukey audit verify`\n";
}

void verify_log(Context& ctx)
{
    const auto r = must(verify(settings()));
    nlohmann::json doc = {{"ok", r.ok},
                          {"records", r.records},
                          {"first_seq", r.first_seq ? nlohmann::json(*r.first_seq) : nlohmann::json(nullptr)},
                          {"last_seq", r.last_seq ? nlohmann::json(*r.last_seq) : nlohmann::json(nullptr)},
                          {"files", r.files},
                          {"notes", r.notes},
                          {"first_bad_seq", r.first_bad_seq ? nlohmann::json(*r.first_bad_seq) : nlohmann::json(nullptr)},
                          {"file", r.ok ? nlohmann::json(nullptr) : nlohmann::json(r.file)},
                          {"line", r.ok || r.line == 0 ? nlohmann::json(nullptr) : nlohmann::json(r.line)},
                          {"why", r.ok ? nlohmann::json(nullptr) : nlohmann::json(r.why)}};
    if (!r.ok) {
        if (ctx.json) {
            std::cout << json_text(doc) << std::endl;
            ctx.json_error_done = true;
        }
        const std::string at = r.file.empty() ? std::string()
                                              : " (" + r.file + (r.line ? " line " + std::to_string(r.line) : "") + ")";
        throw Failure(audit_broken, "the audit log fails verification: " + r.why + at +
                                        "; see " UKEY_DOC("audit.md") " for what each finding means");
    }
    ctx.print(doc, [&] {
        if (r.records == 0) {
            std::cout << "The audit log is empty.\n";
        } else {
            std::cout << "The audit log is intact: " << r.records << " record(s), seq " << *r.first_seq << ".."
                      << *r.last_seq << ", in " << r.files.size() << " file(s).\n";
        }
        for (const auto& n : r.notes)
            std::cout << "note: " << shown(n) << "\n";
    });
}

} // namespace

void add_audit(CLI::App& app, Context& ctx)
{
    auto* audit = app.add_subcommand("audit", "Show or check the audit log of logins, PIN and Key changes");
    audit->require_subcommand(1);
    static AuditArgs a;

    auto* s = audit->add_subcommand("show", "List the audit records, oldest first (one line each)");
    s->add_option("--key", a.key, "only records whose Key text (backend, label, serial) contains this");
    s->add_option("--since", a.since, "only records since a time ago (30m, 2h, 7d) or a UTC date or time (2026-12-01T08:00)");
    s->add_option("--kind", a.kind, "only records of this kind: " + kinds_list());
    s->callback([&ctx] { show(ctx, a); });

    auto* v = audit->add_subcommand("verify", "Check the hash chain; exit 16 naming the first bad record");
    v->callback([&ctx] { verify_log(ctx); });
}

} // namespace ukey::cli
