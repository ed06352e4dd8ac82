// Reading and checking the audit log (docs/audit.md, "What verify finds").
#include "token/audit_log.h"

#include "token/audit_file.h"

#include <algorithm>
#include <map>
#include <unordered_map>

namespace ukey {

using namespace audit_file;

namespace {

struct Line {
    std::size_t file = 0; // index into Loaded::files
    std::size_t number = 0;
    bool partial = false; // no newline after it: the last line, unfinished
    Parsed parsed;
    bool good() const { return !partial && parsed.record && !parsed.hash_mismatch; }
};

struct Loaded {
    std::vector<std::string> files; // oldest first; audit.log last
    std::vector<Line> lines;
    std::string missing; // a rotated file missing between others
};

// All kept files, read under the shared lock, so that no append or
// rotation happens halfway (`lock` stays held for reading audit.head too).
Result<Loaded> load(const std::filesystem::path& dir, Fd& lock)
{
    Loaded l;
    auto there = private_dir(dir, false);
    if (!there)
        return there.error();
    if (!*there)
        return l;
    if (auto locked = take_lock(dir, lock, false); !locked)
        return locked.error();
    // The rotated files present: audit.log.N with N > 0, oldest (largest) first.
    unsigned highest = 0;
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
        const std::string name = e.path().filename().string();
        const std::string prefix = std::string(log_name) + ".";
        if (name.rfind(prefix, 0) != 0 || name.size() > prefix.size() + 3)
            continue;
        const std::string digits = name.substr(prefix.size());
        if (digits.empty() || digits.find_first_not_of("0123456789") != std::string::npos || digits[0] == '0')
            continue;
        highest = std::max(highest, unsigned(std::stoul(digits)));
    }
    if (ec)
        return error(dir, "cannot be listed: " + ec.message());
    std::vector<std::filesystem::path> paths;
    for (unsigned n = highest; n >= 1; --n)
        paths.push_back(rotated(dir, n));
    paths.push_back(dir / log_name);
    for (const auto& path : paths) {
        auto text = read_private(path);
        if (!text)
            return text.error();
        if (!*text) {
            if (path.filename() != log_name && l.missing.empty())
                l.missing = path.string();
            continue;
        }
        l.files.push_back(path.string());
        const std::string& t = **text;
        std::size_t at = 0, number = 0;
        while (at < t.size()) {
            const auto end = t.find('\n', at);
            Line line;
            line.file = l.files.size() - 1;
            line.number = ++number;
            line.partial = end == std::string::npos;
            const std::size_t stop = line.partial ? t.size() : end;
            line.parsed = parse_line(std::string_view(t).substr(at, stop - at));
            l.lines.push_back(std::move(line));
            at = stop + 1;
        }
    }
    return l;
}

class Checker {
public:
    Checker(const Loaded& l, VerifyReport& r) : l_(l), r_(r)
    {
        for (std::size_t i = 0; i < l.lines.size(); ++i)
            if (l.lines[i].good())
                at_hash_.emplace(l.lines[i].parsed.record->hash, i);
    }

    // Walks the chain; false at the first bad record (reported).
    bool chain()
    {
        for (std::size_t j = 0; j < l_.lines.size(); ++j) {
            const Line& line = l_.lines[j];
            if (line.partial && j + 1 == l_.lines.size() && l_.files[line.file].ends_with(log_name)) {
                partial_ = &line;
                break; // the end of audit.log: judged against audit.head
            }
            const std::optional<std::uint64_t> guess = p_ ? std::optional(rec(p_).seq + 1) : std::nullopt;
            if (line.partial)
                return bad(guess, line, "is cut short (the file was truncated mid-line)");
            if (!line.parsed.record)
                return bad(guess, line, line.parsed.why);
            const AuditRecord& e = *line.parsed.record;
            if (line.parsed.hash_mismatch)
                return bad(e.seq, line, "does not match its hash: the record was edited");
            ++r_.records;
            if (!r_.first_seq)
                r_.first_seq = e.seq;
            r_.last_seq = e.seq;
            if (!p_) {
                if (e.seq == 1 && e.prev != genesis)
                    return bad(e.seq, line, "is seq 1 but does not start the chain (records were inserted before "
                                            "it, or it was rewritten)");
                if (e.seq != 1)
                    r_.notes.push_back("the log starts at seq " + std::to_string(e.seq) +
                                       ": older records were rotated away, so the first kept record's prev is "
                                       "taken as given");
            } else if (!(e.seq == rec(p_).seq + 1 && e.prev == rec(p_).hash) && !classify(j)) {
                return false;
            }
            pp_ = p_;
            p_ = &line;
        }
        return true;
    }

    // audit.head against the end of the chain.
    bool tail(const std::optional<Head>& head, bool head_exists)
    {
        const std::uint64_t last = p_ ? rec(p_).seq : 0;
        const std::string log = l_.files.empty() ? std::string() : l_.files.back();
        if (!head_exists)
            return !p_ || bad(std::nullopt, head_name,
                              "is missing: whether records were cut off the end cannot be checked");
        if (!head)
            return bad(std::nullopt, head_name, "is damaged: whether records were cut off the end cannot be checked");
        if (partial_) {
            if (head->seq > last)
                return bad(last + 1, *partial_, "is cut short: the log was truncated in the middle of a record");
            r_.notes.push_back("the last line of audit.log is unfinished: a crash while it was written, before "
                               "it counted (the next record replaces it)");
        }
        if (head->seq > last) {
            const std::size_t lines_in_log = p_ && l_.files[p_->file] == log ? p_->number : 0;
            r_.first_bad_seq = last + 1;
            r_.file = p_ ? l_.files[p_->file] : log;
            r_.line = lines_in_log + 1;
            r_.why = "record seq " + std::to_string(last + 1) + " is missing: audit.head records seq " +
                     std::to_string(head->seq) + " but the log ends at seq " + std::to_string(last) +
                     " (records were cut off the end)";
            return false;
        }
        // (A head behind the log is stale, its start too: see below.)
        if (r_.first_seq && *r_.first_seq > head->first && head->seq >= last) {
            const Line& first = *std::find_if(l_.lines.begin(), l_.lines.end(), [](const Line& l) { return l.good(); });
            r_.notes.clear(); // not rotated away after all
            return bad(head->first, first,
                       "is missing: audit.head says the kept records start at seq " + std::to_string(head->first) +
                           ", but the oldest is seq " + std::to_string(*r_.first_seq) +
                           " (records were removed from the start)");
        }
        if (head->seq == last && head->hash != rec(p_).hash)
            return bad(last, *p_, "is not the last record audit.head records: it was replaced");
        if (head->seq < last) {
            for (const auto& [hash, i] : at_hash_)
                if (rec(&l_.lines[i]).seq == head->seq && hash != head->hash)
                    return bad(head->seq, head_name, "does not match record seq " + std::to_string(head->seq));
            r_.notes.push_back("audit.head is at seq " + std::to_string(head->seq) +
                               ", behind the log (a crash between writing a record and the head)");
        }
        return true;
    }

private:
    static const AuditRecord& rec(const Line* l) { return *l->parsed.record; }

    bool bad(std::optional<std::uint64_t> seq, const Line& line, const std::string& why)
    {
        r_.first_bad_seq = seq;
        r_.file = l_.files[line.file];
        r_.line = line.number;
        r_.why = (seq ? "record seq " + std::to_string(*seq) : std::string("line ") + std::to_string(line.number)) +
                 " " + why;
        return false;
    }
    bool bad(std::optional<std::uint64_t> seq, const std::string& file, const std::string& why)
    {
        r_.first_bad_seq = seq;
        r_.file = file;
        r_.line = 0;
        r_.why = file + " " + why;
        return false;
    }

    // Line j does not follow the record before it (p_): which record is out
    // of place, and how. Always false (reported).
    bool classify(std::size_t j)
    {
        const Line& line = l_.lines[j];
        const AuditRecord& e = rec(&line);
        const AuditRecord& p = rec(p_);
        const Line* next = j + 1 < l_.lines.size() && l_.lines[j + 1].good() ? &l_.lines[j + 1] : nullptr;
        // The record before p_ (or where the first one chains to).
        const std::string& before_p = pp_ ? rec(pp_).hash : p.prev;
        if (p.prev == e.hash)
            return bad(p.seq, *p_, "comes before seq " + std::to_string(e.seq) +
                                       ", which it follows: records were reordered");
        if (auto later = at_hash_.find(e.prev); later != at_hash_.end() && later->second > j)
            return bad(e.seq, line, "comes before seq " + std::to_string(rec(&l_.lines[later->second]).seq) +
                                        ", which it follows: records were reordered");
        if (e.prev == before_p && e.hash != p.hash)
            return bad(p.seq, *p_, "was inserted: the record after it chains to the one before it");
        if (e.seq <= p.seq)
            return bad(e.seq, line, "repeats a seq already seen (seq " + std::to_string(p.seq) +
                                        " came before it): a record was inserted or copied");
        if (next && rec(next).prev == p.hash)
            return bad(e.seq, line, "was inserted: the record after it chains to the one before it");
        if (e.seq > p.seq + 1) {
            const std::string gap = e.seq == p.seq + 2 ? "seq " + std::to_string(p.seq + 1)
                                                        : "seqs " + std::to_string(p.seq + 1) + ".." +
                                                              std::to_string(e.seq - 1);
            return bad(p.seq + 1, line, "is missing before line " + std::to_string(line.number) + " (" + gap +
                                            " removed)");
        }
        if (next && rec(next).prev == e.hash)
            return bad(p.seq, *p_, "was rewritten: its hash was recomputed, but the record after it chains to "
                                   "another");
        return bad(e.seq, line, "does not chain to the record before it (seq " + std::to_string(p.seq) + ")");
    }

    const Loaded& l_;
    VerifyReport& r_;
    std::unordered_map<std::string, std::size_t> at_hash_;
    const Line* p_ = nullptr;  // the last record accepted
    const Line* pp_ = nullptr; // the one before it
    const Line* partial_ = nullptr;
};

} // namespace

Result<AuditRecords> read_records(const AuditSettings& settings, const AuditFilter& filter)
{
    Fd lock;
    auto loaded = load(settings.dir, lock);
    if (!loaded)
        return loaded.error();
    AuditRecords out;
    for (const Line& line : loaded->lines) {
        if (!line.parsed.record) {
            ++out.unreadable;
            continue;
        }
        AuditRecord r = *line.parsed.record;
        if ((filter.kind && r.kind != *filter.kind) ||
            (filter.key && r.key.find(*filter.key) == std::string::npos) || (filter.since && r.time < *filter.since))
            continue;
        r.file = loaded->files[line.file];
        r.line = line.number;
        out.records.push_back(std::move(r));
    }
    return out;
}

Result<VerifyReport> verify(const AuditSettings& settings)
{
    Fd lock;
    auto loaded = load(settings.dir, lock);
    if (!loaded)
        return loaded.error();
    VerifyReport r;
    r.files = loaded->files;
    if (!loaded->missing.empty()) {
        r.file = loaded->missing;
        r.why = loaded->missing + " is missing between the kept files";
        return r;
    }
    auto head_text = read_private(settings.dir / head_name);
    if (!head_text)
        return head_text.error();
    const std::optional<Head> head = *head_text ? parse_head(**head_text) : std::nullopt;
    Checker c(*loaded, r);
    r.ok = c.chain() && c.tail(head, bool(*head_text));
    if (!r.ok && r.file == head_name)
        r.file = (settings.dir / head_name).string();
    return r;
}

} // namespace ukey
