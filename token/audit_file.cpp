#include "token/audit_file.h"

#include "token/files.h"

#include <nlohmann/json.hpp>
#include <openssl/evp.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

namespace ukey::audit_file {

namespace {

// `,"hash":"` + 64 hex digits + `"}`
constexpr std::string_view hash_prefix = ",\"hash\":\"";
constexpr std::size_t hash_suffix_size = hash_prefix.size() + 64 + 2;

template <class T>
bool get(const nlohmann::json& j, const char* name, T& out)
{
    auto it = j.find(name);
    if (it == j.end())
        return false;
    if constexpr (std::is_same_v<T, std::string>) {
        if (!it->is_string())
            return false;
    } else if constexpr (std::is_unsigned_v<T>) {
        if (!it->is_number_unsigned())
            return false;
    } else {
        if (!it->is_number_integer())
            return false;
    }
    out = it->get<T>();
    return true;
}

} // namespace

std::filesystem::path rotated(const std::filesystem::path& dir, unsigned n)
{
    return dir / (std::string(log_name) + "." + std::to_string(n));
}

std::string sha256_hex(std::string_view data)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_Digest(data.data(), data.size(), md, &n, EVP_sha256(), nullptr);
    static const char* digits = "0123456789abcdef";
    std::string out;
    for (unsigned i = 0; i < n; ++i) {
        out += digits[md[i] >> 4];
        out += digits[md[i] & 15];
    }
    return out;
}

bool is_hash(std::string_view s)
{
    return s.size() == 64 && s.find_first_not_of("0123456789abcdef") == std::string_view::npos;
}

std::string make_line(AuditRecord& r)
{
    // ordered_json: the fields in the order a reader expects them; the
    // canonical text is exactly this dump, so no reordering is involved.
    nlohmann::ordered_json j;
    j["seq"] = r.seq;
    j["time"] = r.time;
    j["kind"] = r.kind;
    j["key"] = r.key;
    j["user_type"] = r.user_type;
    j["rv"] = static_cast<std::uint64_t>(r.rv);
    j["detail"] = r.detail;
    j["pid"] = r.pid;
    j["uid"] = r.uid;
    j["exe"] = r.exe;
    j["prev"] = r.prev;
    const std::string canonical = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    std::string line = canonical.substr(0, canonical.size() - 1);
    line += hash_prefix;
    r.hash = sha256_hex(canonical);
    line += r.hash;
    line += "\"}\n";
    return line;
}

Parsed parse_line(std::string_view line)
{
    Parsed p;
    const auto doc = nlohmann::json::parse(line, nullptr, false);
    if (doc.is_discarded() || !doc.is_object()) {
        p.why = "is not a JSON record";
        return p;
    }
    AuditRecord r;
    std::uint64_t rv = 0;
    if (!get(doc, "seq", r.seq) || !get(doc, "time", r.time) || !get(doc, "kind", r.kind) ||
        !get(doc, "key", r.key) || !get(doc, "user_type", r.user_type) || !get(doc, "rv", rv) ||
        !get(doc, "detail", r.detail) || !get(doc, "pid", r.pid) || !get(doc, "uid", r.uid) ||
        !get(doc, "exe", r.exe) || !get(doc, "prev", r.prev) || !get(doc, "hash", r.hash) || doc.size() != 12) {
        p.why = "lacks a field of a record, or has one of the wrong type";
        return p;
    }
    r.rv = static_cast<CK_RV>(rv);
    if (!is_hash(r.prev) || !is_hash(r.hash)) {
        p.why = "has a prev or hash that is not a SHA-256";
        return p;
    }
    // The hash field must be the last thing on the line, as make_line puts
    // it: what it covers is then exactly the rest.
    if (line.size() < hash_suffix_size ||
        line.substr(line.size() - hash_suffix_size) != std::string(hash_prefix) + r.hash + "\"}") {
        p.why = "does not end with its hash field";
        return p;
    }
    std::string canonical(line.substr(0, line.size() - hash_suffix_size));
    canonical += '}';
    if (sha256_hex(canonical) != r.hash) {
        p.hash_mismatch = true;
        p.why = "does not match its hash (the record was edited)";
    }
    p.record = std::move(r);
    return p;
}

std::string head_text(const Head& h)
{
    return "ukey-audit-head 1 seq=" + std::to_string(h.seq) + " hash=" + h.hash + " first=" + std::to_string(h.first) +
           "\n";
}

std::optional<Head> parse_head(std::string_view text)
{
    unsigned long long seq = 0, first = 0;
    char hash[65] = {0};
    int used = 0;
    const std::string t(text.substr(0, 256));
    if (std::sscanf(t.c_str(), "ukey-audit-head 1 seq=%llu hash=%64[0-9a-f] first=%llu\n%n", &seq, hash, &first,
                    &used) != 3 ||
        std::size_t(used) != t.size() || !is_hash(hash) || first == 0)
        return std::nullopt;
    return Head{seq, hash, first};
}

Result<void> check_private(const std::filesystem::path& path, bool folder)
{
    struct stat st;
    if (lstat(path.c_str(), &st) != 0)
        return Error{CKR_FUNCTION_FAILED, std::string("cannot be inspected: ") + std::strerror(errno)};
    return private_to_us(st, folder);
}

std::optional<std::uint64_t> first_kept_seq(const std::filesystem::path& dir)
{
    for (unsigned n = audit_max_keep + 1; n-- > 0;) {
        const auto path = n ? rotated(dir, n) : dir / log_name;
        const int fd = open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
            continue;
        std::string buf(line_max, '\0');
        const ssize_t got = read(fd, buf.data(), buf.size());
        close(fd);
        buf.resize(got > 0 ? std::size_t(got) : 0);
        const auto end = buf.find('\n');
        if (end == std::string::npos)
            return std::nullopt;
        if (auto p = parse_line(std::string_view(buf).substr(0, end)); p.record)
            return p.record->seq;
        return std::nullopt;
    }
    return std::nullopt;
}

Fd::~Fd()
{
    if (fd >= 0)
        close(fd);
}

Result<bool> take_lock(const std::filesystem::path& dir, Fd& f, bool exclusive)
{
    const auto path = dir / lock_name;
    f.fd = exclusive ? open(path.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600)
                     : open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (f.fd < 0 && !exclusive && errno == ENOENT)
        return false;
    if (f.fd < 0)
        return error(path, std::string("cannot be opened: ") + std::strerror(errno));
    if (auto mine = check_private(path, false); !mine)
        return error(path, mine.error().message);
    // At most 3 s without progress: a holder that stopped while appending
    // must not hang a login. Progress is another append done meanwhile
    // (audit.head is replaced by each): on a busy machine with many
    // appenders, a waiter may lose the lock to others for longer than that,
    // and must still get its turn.
    auto head_mark = [&dir] {
        struct stat st{};
        if (stat((dir / head_name).c_str(), &st) != 0)
            return std::pair<ino_t, long long>{0, 0};
        return std::pair<ino_t, long long>{st.st_ino, st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec};
    };
    auto mark = head_mark();
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(3);
    useconds_t pause = 200;
    while (flock(f.fd, (exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB) != 0) {
        if (errno == EINTR)
            continue;
        if (errno != EWOULDBLOCK)
            return error(path, std::string("cannot be locked: ") + std::strerror(errno));
        const auto now = std::chrono::steady_clock::now();
        if (const auto m = head_mark(); m != mark) {
            mark = m;
            deadline = now + std::chrono::seconds(3);
        }
        if (now >= deadline)
            return error(path, "is held by another process for too long (a process stopped while appending?)");
        usleep(pause);
        pause = std::min<useconds_t>(pause * 2, 5000);
    }
    return true;
}

Error error(const std::filesystem::path& path, const std::string& what)
{
    return Error{CKR_FUNCTION_FAILED, "audit log: " + path.string() + " " + what};
}

Result<bool> private_dir(const std::filesystem::path& dir, bool create)
{
    struct stat st;
    if (lstat(dir.c_str(), &st) != 0) {
        if (errno != ENOENT)
            return error(dir, std::string("cannot be inspected: ") + std::strerror(errno));
        if (!create)
            return false;
        // Missing parents too (a fresh state folder), each 0700.
        if (dir.has_parent_path() && dir.parent_path() != dir) {
            struct stat up;
            if (lstat(dir.parent_path().c_str(), &up) != 0)
                if (auto made = private_dir(dir.parent_path(), true); !made)
                    return made;
        }
        if (mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST)
            return error(dir, std::string("cannot be created: ") + std::strerror(errno));
    }
    if (auto mine = check_private(dir, true); !mine)
        return error(dir, mine.error().message + " (make it yours and private: chmod 700)");
    return true;
}

Result<std::optional<std::string>> read_private(const std::filesystem::path& path)
{
    const int fd = open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return std::optional<std::string>();
        return error(path, std::string("cannot be read: ") + std::strerror(errno));
    }
    struct stat st;
    std::string why;
    if (fstat(fd, &st) != 0)
        why = std::string("cannot be inspected: ") + std::strerror(errno);
    else if (auto mine = private_to_us(st, false); !mine)
        why = mine.error().message;
    std::string text;
    char buf[65536];
    for (ssize_t n; why.empty() && (n = read(fd, buf, sizeof buf)) != 0;) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            why = std::string("cannot be read: ") + std::strerror(errno);
            break;
        }
        text.append(buf, std::size_t(n));
    }
    close(fd);
    if (!why.empty())
        return error(path, why);
    return std::optional<std::string>(std::move(text));
}

} // namespace ukey::audit_file
