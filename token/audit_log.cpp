// Writing the audit log (docs/audit.md). Reading and checking it:
// audit_read.cpp; the file format: audit_file.cpp.
#include "token/audit_log.h"
#include "token/peer_access.h"

#include "token/audit_file.h"
#include "token/escape.h"
#include "token/files.h"
#include "token/fork.h"

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

namespace ukey {

using namespace audit_file;

namespace {

// The one table of kind names.
constexpr std::array<std::pair<AuditKind, std::string_view>, 10> kind_names{{
    {AuditKind::login, "login"},
    {AuditKind::login_failed, "login-failed"},
    {AuditKind::pin_locked, "pin-locked"},
    {AuditKind::pin_unlocked, "pin-unlocked"},
    {AuditKind::set_pin, "set-pin"},
    {AuditKind::init_pin, "init-pin"},
    {AuditKind::init_token, "init-token"},
    {AuditKind::key_generated, "key-generated"},
    {AuditKind::object_created, "object-created"},
    {AuditKind::object_destroyed, "object-destroyed"},
}};

// A string from a Key: at most audit_field_max bytes, escaped, so that the
// file itself holds nothing a terminal acts on, even when read with cat.
std::string field(std::string_view s)
{
    return escape::printable(s.substr(0, audit_field_max));
}

std::string now_utc()
{
    timespec ts{};
    clock_gettime(CLOCK_REALTIME, &ts);
    tm t{};
    gmtime_r(&ts.tv_sec, &t);
    char buf[96];
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", t.tm_year + 1900, t.tm_mon + 1, t.tm_mday,
                  t.tm_hour, t.tm_min, t.tm_sec, int(ts.tv_nsec / 1000000) % 1000);
    return buf;
}

// The program of process `pid` ("self": this one). Another user's is not
// ours to read (/proc/PID/exe needs ptrace rights): its name (comm, 15
// bytes at most) then, in brackets.
std::string executable(const std::string& pid = "self")
{
    char buf[4096];
    const ssize_t n = readlink(("/proc/" + pid + "/exe").c_str(), buf, sizeof buf);
    if (n > 0)
        return escape::printable(std::string_view(buf, std::size_t(std::min<ssize_t>(n, 1024))));
    std::string comm;
    if (FILE* f = std::fopen(("/proc/" + pid + "/comm").c_str(), "re")) {
        char c[64] = {};
        if (std::fgets(c, sizeof c, f))
            comm = c;
        std::fclose(f);
    }
    while (!comm.empty() && comm.back() == '\n')
        comm.pop_back();
    return comm.empty() ? "?" : "[" + escape::printable(comm) + "]";
}

// The end of a log file: its last complete record (if it parses) and the
// length of an unfinished last line (0 if the file ends with a newline).
struct Tail {
    std::optional<AuditRecord> last;
    off_t size = 0;
    std::size_t fragment = 0;
    bool fragment_whole = true; // false: it is longer than what was read
};

Result<Tail> read_tail(const std::filesystem::path& path)
{
    Tail t;
    Fd f;
    f.fd = open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (f.fd < 0) {
        if (errno == ENOENT)
            return t;
        return error(path, std::string("cannot be read: ") + std::strerror(errno));
    }
    struct stat st;
    if (fstat(f.fd, &st) != 0)
        return error(path, std::string("cannot be inspected: ") + std::strerror(errno));
    t.size = st.st_size;
    const off_t from = std::max<off_t>(0, st.st_size - off_t(2 * line_max));
    std::string buf(std::size_t(st.st_size - from), '\0');
    if (pread(f.fd, buf.data(), buf.size(), from) != ssize_t(buf.size()))
        return error(path, std::string("cannot be read: ") + std::strerror(errno));
    const auto end = buf.rfind('\n');
    t.fragment = end == std::string::npos ? buf.size() : buf.size() - end - 1;
    t.fragment_whole = end != std::string::npos || from == 0;
    if (end == std::string::npos)
        return t;
    const auto start = buf.rfind('\n', end == 0 ? 0 : end - 1);
    const std::size_t b = (start == std::string::npos || end == 0) ? 0 : start + 1;
    if (auto p = parse_line(std::string_view(buf).substr(b, end - b)); p.record && !p.hash_mismatch)
        t.last = std::move(p.record);
    return t;
}

// audit.head through a temporary file and rename: never half written. No
// fsync (see append()).
Result<void> write_head(const std::filesystem::path& dir, const Head& h)
{
    const auto path = dir / head_name;
    const auto tmp = dir / (std::string(head_name) + ".tmp");
    Fd f;
    f.fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (f.fd < 0)
        return error(tmp, std::string("cannot be written: ") + std::strerror(errno));
    fchmod(f.fd, 0600);
    if (!write_all(f.fd, head_text(h)) || rename(tmp.c_str(), path.c_str()) != 0)
        return error(path, std::string("cannot be written: ") + std::strerror(errno));
    return {};
}

// audit.log becomes audit.log.1, .1 becomes .2, ...; the oldest beyond
// `keep` is dropped. The next record starts the new audit.log and chains to
// the last one of the old (its prev comes from audit.head).
Result<void> rotate(const std::filesystem::path& dir, unsigned keep)
{
    const auto log = dir / log_name;
    // The oldest kept file goes, and so does what a larger keep left
    // behind: a file past `keep` that stayed would sit in the wrong place
    // in the chain.
    for (unsigned n = std::max(keep, 1u); n <= audit_max_keep; ++n)
        unlink(rotated(dir, n).c_str());
    if (keep == 0) {
        if (unlink(log.c_str()) != 0 && errno != ENOENT)
            return error(log, std::string("cannot be removed: ") + std::strerror(errno));
        return {};
    }
    for (unsigned n = keep - 1; n >= 1; --n)
        if (rename(rotated(dir, n).c_str(), rotated(dir, n + 1).c_str()) != 0 && errno != ENOENT)
            return error(rotated(dir, n), std::string("cannot be renamed: ") + std::strerror(errno));
    if (rename(log.c_str(), rotated(dir, 1).c_str()) != 0)
        return error(log, std::string("cannot be renamed: ") + std::strerror(errno));
    return {};
}

} // namespace

std::string_view audit_kind_name(AuditKind kind)
{
    for (const auto& [k, name] : kind_names)
        if (k == kind)
            return name;
    return "unknown";
}

std::optional<AuditKind> audit_kind_from(std::string_view name)
{
    for (const auto& [k, n] : kind_names)
        if (n == name)
            return k;
    return std::nullopt;
}

const std::vector<AuditKind>& audit_kinds()
{
    static const std::vector<AuditKind> all = [] {
        std::vector<AuditKind> v;
        for (const auto& entry : kind_names)
            v.push_back(entry.first);
        return v;
    }();
    return all;
}

Result<std::unique_ptr<AuditLog>> AuditLog::open(const AuditSettings& settings)
{
    if (!settings.enabled)
        return std::unique_ptr<AuditLog>();
    if (!settings.dir.is_absolute())
        return Error{CKR_FUNCTION_FAILED, "audit log: the folder must be an absolute path, not '" +
                                              settings.dir.string() + "'"};
    if (auto ok = private_dir(settings.dir, false); !ok)
        return ok.error();
    return std::unique_ptr<AuditLog>(new AuditLog(settings));
}

Result<void> AuditLog::append(const AuditEvent& event)
{
    ForkGuard no_fork_meanwhile; // a child must not inherit the locked descriptor
    const auto& dir = settings_.dir;
    if (auto ok = private_dir(dir, true); !ok)
        return ok.error();
    Fd lock;
    if (auto ok = take_lock(dir, lock, true); !ok)
        return ok.error();

    // Where the chain goes on. audit.head is the authority: a log whose end
    // was cut off keeps its gap (verify names it) instead of the next record
    // quietly chaining to what is left. The log is ahead of the head only
    // after a crash between the two writes: then its last record counts.
    const auto log = dir / log_name;
    auto head_text = read_private(dir / head_name);
    if (!head_text)
        return head_text.error();
    std::optional<Head> head = *head_text ? parse_head(**head_text) : std::nullopt;
    auto tail = read_tail(log);
    if (!tail)
        return tail.error();
    if (!tail->last && tail->size == 0) {
        auto older = read_tail(rotated(dir, 1)); // just rotated
        if (older && older->last)
            tail->last = older->last;
    }
    Head at = head.value_or(Head{0, genesis});
    if (tail->last && (!head || tail->last->seq > head->seq)) {
        // The head is lost or stale (perhaps from before a rotation): the
        // files say where they start.
        at = Head{tail->last->seq, tail->last->hash, first_kept_seq(dir).value_or(1)};
    }

    Fd out;
    out.fd = ::open(log.c_str(), O_RDWR | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (out.fd < 0)
        return error(log, std::string("cannot be opened: ") + std::strerror(errno));
    if (auto mine = check_private(log, false); !mine)
        return error(log, mine.error().message);
    if (tail->fragment > 0) {
        // An unfinished last line. If the head never counted it, it is what
        // a crash left of a record that was never finished: it goes. Else
        // it is a record cut short afterwards: it stays, ended, for verify.
        const bool unfinished =
            tail->fragment_whole && (!head || !tail->last || head->seq <= tail->last->seq);
        if (unfinished ? ftruncate(out.fd, tail->size - off_t(tail->fragment)) != 0 : !write_all(out.fd, "\n"))
            return error(log, std::string("cannot be repaired: ") + std::strerror(errno));
    }

    AuditRecord r;
    r.seq = at.seq + 1;
    r.prev = at.hash;
    r.time = now_utc();
    r.kind = std::string(audit_kind_name(event.kind));
    r.key = field(event.key);
    r.user_type = field(event.user_type);
    r.rv = event.rv;
    r.detail = field(event.detail);
    // In service mode the application is the served peer, not this
    // serving child (docs/service-mode.md).
    if (const auto peer = served_peer()) {
        r.pid = peer->pid;
        r.uid = peer->uid;
        r.exe = executable(std::to_string(peer->pid));
    } else {
        r.pid = getpid();
        r.uid = geteuid();
        r.exe = executable();
    }
    const std::string line = make_line(r); // sets r.hash

    struct stat st;
    if (fstat(out.fd, &st) != 0)
        return error(log, std::string("cannot be inspected: ") + std::strerror(errno));
    if (st.st_size > 0 && std::uint64_t(st.st_size) + line.size() > settings_.max_bytes) {
        close(out.fd);
        out.fd = -1;
        if (auto ok = rotate(dir, settings_.keep); !ok)
            return ok.error();
        at.first = first_kept_seq(dir).value_or(r.seq); // a file may have been dropped
        out.fd = ::open(log.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (out.fd < 0)
            return error(log, std::string("cannot be created: ") + std::strerror(errno));
    }
    // No fsync: a login must not wait for the disk, and tamper evidence
    // needs no durability. A crash may lose the last records (and leave an
    // unfinished line, removed above); what is on disk still verifies.
    if (!write_all(out.fd, line))
        return error(log, std::string("cannot be written: ") + std::strerror(errno));
    return write_head(dir, Head{r.seq, r.hash, at.first});
}

} // namespace ukey
