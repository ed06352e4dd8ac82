#include "pin_store.h"

#include "fork.h"

#include <openssl/evp.h>

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <optional>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

namespace ukey {
namespace {

constexpr std::size_t record_size = 256;
constexpr std::size_t file_size = 2 * record_size;

std::string hex_sha256(const std::string& s, std::size_t chars)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_Digest(s.data(), s.size(), md, &n, EVP_sha256(), nullptr);
    static const char* digits = "0123456789abcdef";
    std::string out;
    for (unsigned i = 0; i < n && out.size() < chars; ++i) {
        out += digits[md[i] >> 4];
        out += digits[md[i] & 15];
    }
    return out.substr(0, chars);
}

std::string sanitize(const std::string& s)
{
    std::string out;
    for (char c : s)
        out += std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' ? c : '_';
    return out.substr(0, 40);
}

// Closes the descriptor (and so drops the flock) on every path.
struct Fd {
    int fd = -1;
    ~Fd()
    {
        if (fd >= 0)
            close(fd);
    }
};

struct Record {
    unsigned long long seq = 0;
    PinCounts counts;
};

std::string format(const Record& r, const std::string& key_hash)
{
    char body[200];
    snprintf(body, sizeof body, "ukey-pin 1 seq=%llu user=%u/%u so=%u/%u change=%d key=%s", r.seq,
             r.counts.user_left, r.counts.user_max, r.counts.so_left, r.counts.so_max,
             r.counts.user_must_change ? 1 : 0, key_hash.c_str());
    std::string line = std::string(body) + " sum=" + hex_sha256(body, 16);
    line.resize(record_size - 1, ' ');
    line += '\n';
    return line;
}

bool in_range(unsigned left, unsigned max)
{
    return max >= min_tries && max <= max_tries && left <= max;
}

// One record, or nothing if it is torn, blank or altered.
std::optional<Record> parse(const char* p, const std::string& key_hash, bool& foreign)
{
    std::string text(p, record_size);
    auto sum_at = text.find(" sum=");
    if (sum_at == std::string::npos || text.compare(0, 11, "ukey-pin 1 ") != 0)
        return std::nullopt;
    const std::string body = text.substr(0, sum_at);
    if (text.compare(sum_at + 5, 16, hex_sha256(body, 16)) != 0)
        return std::nullopt;
    Record r;
    unsigned ul, um, sl, sm;
    int change;
    char key[64] = {0};
    if (sscanf(body.c_str(), "ukey-pin 1 seq=%llu user=%u/%u so=%u/%u change=%d key=%63s", &r.seq, &ul, &um, &sl,
               &sm, &change, key) != 7)
        return std::nullopt;
    if (!in_range(ul, um) || !in_range(sl, sm) || (change != 0 && change != 1))
        return std::nullopt;
    if (key_hash != key) {
        foreign = true;
        return std::nullopt;
    }
    r.counts = PinCounts{ul, um, sl, sm, change == 1};
    return r;
}

bool blank(const char* p, std::size_t n)
{
    for (std::size_t i = 0; i < n; ++i)
        if (p[i] != 0)
            return false;
    return true;
}

// The newest intact record and its offset.
std::optional<std::pair<Record, std::size_t>> pick(const char* buf, std::size_t n, const std::string& key_hash,
                                                    bool& foreign)
{
    std::optional<std::pair<Record, std::size_t>> best;
    for (std::size_t at = 0; at + record_size <= n && at < file_size; at += record_size)
        if (auto r = parse(buf + at, key_hash, foreign); r && (!best || r->seq > best->first.seq))
            best = std::make_pair(*r, at);
    return best;
}

Error damaged(const std::filesystem::path& path, const std::string& why, const std::string& fix = {})
{
    return Error{CKR_PIN_LOCKED, "PIN state " + path.string() + " " + why +
                                     ": the Key is treated as locked until this is repaired (" +
                                     (fix.empty() ? "re-initialise the Key, or have an administrator check the file"
                                                  : fix) +
                                     ")"};
}

Error unsafe(const std::filesystem::path& path, const std::string& why, bool folder)
{
    return damaged(path, why,
                   "make it yours and private: chown $(id -u) " + path.string() + " && chmod " +
                       (folder ? "700 " : "600 ") + path.string());
}

// A state file that cannot be opened or read fails closed like a damaged one.
Error unreadable(const std::filesystem::path& path)
{
    const int err = errno;
    if (err == ELOOP)
        return damaged(path, "is a symbolic link", "remove the link; ukey writes a fresh file");
    if (err == EISDIR)
        return damaged(path, "is a folder", "remove it; ukey writes a fresh file");
    return damaged(path, std::string("cannot be read (") + std::strerror(err) + ")",
                   "make it readable and writable by its owner only: chmod 600 " + path.string());
}

Error io_error(const std::filesystem::path& path, const char* what)
{
    return Error{CKR_FUNCTION_FAILED, "cannot " + std::string(what) + " PIN state " + path.string() + ": " +
                                          std::strerror(errno)};
}

// Ownership and mode of an open state file or folder.
std::string check_owner(const struct stat& st, mode_t type)
{
    if ((st.st_mode & S_IFMT) != type)
        return type == S_IFDIR ? "is not a folder" : "is not a regular file";
    if (st.st_uid != geteuid())
        return "is owned by another user (uid " + std::to_string(st.st_uid) + ")";
    if (st.st_mode & 077)
        return "is open to other users (mode " + std::to_string((st.st_mode >> 6) & 7) +
               std::to_string((st.st_mode >> 3) & 7) + std::to_string(st.st_mode & 7) + ", must be " +
               (type == S_IFDIR ? "700)" : "600)");
    return {};
}

} // namespace

PinStore::PinStore(std::filesystem::path dir, PinCounts defaults) : dir_(std::move(dir)), defaults_(defaults)
{
}

std::filesystem::path PinStore::path_of(const KeyId& key) const
{
    return dir_ / (sanitize(key.backend) + "-" + sanitize(key.serial) + "-" + hex_sha256(key.identity(), 12) +
                   ".pin");
}

Result<bool> PinStore::ensure_dir() const
{
    return ensure_dirs({dir_.parent_path(), dir_});
}

// Create what is missing with 0700; an existing folder must already be ours
// and private.
Result<bool> PinStore::ensure_dirs(std::initializer_list<std::filesystem::path> dirs) const
{
    std::error_code ec;
    for (const auto& d : dirs) {
        if (mkdir(d.c_str(), 0700) != 0 && errno != EEXIST) {
            std::filesystem::create_directories(d.parent_path(), ec);
            if (mkdir(d.c_str(), 0700) != 0 && errno != EEXIST)
                return io_error(d, "create the folder of");
        }
        struct stat st;
        if (lstat(d.c_str(), &st) != 0)
            return io_error(d, "inspect the folder of");
        if (auto why = check_owner(st, S_IFDIR); !why.empty())
            return unsafe(d, "folder " + why, true);
    }
    return true;
}

Result<bool> PinStore::check_dirs() const
{
    for (const auto& d : {dir_.parent_path(), dir_}) {
        struct stat st;
        if (lstat(d.c_str(), &st) != 0)
            return errno == ENOENT ? Result<bool>(false) : Result<bool>(io_error(d, "inspect the folder of"));
        if (auto why = check_owner(st, S_IFDIR); !why.empty())
            return unsafe(d, "folder " + why, true);
    }
    return true;
}

Result<PinCounts> PinStore::read(const KeyId& key) const
{
    ForkGuard no_fork_meanwhile; // a child must not inherit our flock'd descriptor
    auto dirs = check_dirs();
    if (!dirs)
        return dirs.error();
    if (!*dirs)
        return defaults_; // nothing recorded yet
    const auto path = path_of(key);
    Fd f;
    f.fd = open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (f.fd < 0) {
        if (errno == ENOENT)
            return defaults_;
        return unreadable(path);
    }
    struct stat st;
    if (fstat(f.fd, &st) != 0)
        return io_error(path, "inspect");
    if (auto why = check_owner(st, S_IFREG); !why.empty())
        return unsafe(path, why, false);
    if (flock(f.fd, LOCK_SH) != 0)
        return io_error(path, "lock");
    char buf[file_size];
    ssize_t n = pread(f.fd, buf, file_size, 0);
    if (n < 0)
        return unreadable(path);
    if (blank(buf, static_cast<std::size_t>(n)) && fstat(f.fd, &st) == 0 && st.st_size <= off_t(file_size))
        return defaults_;
    if (fstat(f.fd, &st) != 0 || st.st_size != off_t(file_size))
        return damaged(path, "has the wrong size (" + std::to_string(st.st_size) + " bytes, not " +
                                 std::to_string(file_size) + ")");
    const std::string key_hash = hex_sha256(key.identity(), 16);
    bool foreign = false;
    auto newest = pick(buf, static_cast<std::size_t>(n), key_hash, foreign);
    if (!newest)
        return damaged(path, foreign ? "belongs to another Key" : "is corrupt");
    return newest->first.counts;
}

PinStore::AttemptLock::~AttemptLock()
{
    if (fd_ >= 0)
        close(fd_); // drops the flock
}

Result<PinStore::AttemptLock> PinStore::lock_attempts(const KeyId& key)
{
    // Lock files live apart, so <state_dir>/pin holds only the state.
    const auto locks = dir_.parent_path() / "pin-locks";
    if (auto ok = ensure_dirs({dir_.parent_path(), locks}); !ok)
        return ok.error();
    auto path = locks / path_of(key).filename();
    path += ".lock";
    int fd = open(path.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return unreadable(path);
    AttemptLock guard(fd);
    while (flock(fd, LOCK_EX) != 0)
        if (errno != EINTR)
            return io_error(path, "lock");
    return guard;
}

Result<PinCounts> PinStore::update(const KeyId& key, const std::function<bool(PinCounts&)>& change, bool sync)
{
    return apply(key, change, sync, false);
}

Result<PinCounts> PinStore::reset(const KeyId& key, const PinCounts& fresh)
{
    return apply(key, [&](PinCounts& c) { c = fresh; return true; }, true, true);
}

Result<PinCounts> PinStore::apply(const KeyId& key, const std::function<bool(PinCounts&)>& change, bool sync,
                                  bool ignore_damage)
{
    ForkGuard no_fork_meanwhile; // a child must not inherit our flock'd descriptor
    if (auto ok = ensure_dir(); !ok)
        return ok.error();
    const auto path = path_of(key);
    Fd f;
    if (ignore_damage) {
        // A reset starts from nothing: whatever is in the way (a foreign or
        // broken file, a link) goes, as long as the folder is ours.
        struct stat old;
        if (lstat(path.c_str(), &old) == 0 &&
            (!S_ISREG(old.st_mode) || !check_owner(old, S_IFREG).empty()) && unlink(path.c_str()) != 0)
            return unreadable(path);
    }
    f.fd = open(path.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (f.fd < 0)
        return unreadable(path);
    if (flock(f.fd, LOCK_EX) != 0)
        return io_error(path, "lock");
    struct stat st;
    if (fstat(f.fd, &st) != 0)
        return io_error(path, "inspect");
    if (auto why = check_owner(st, S_IFREG); !why.empty())
        return unsafe(path, why, false);

    const std::string key_hash = hex_sha256(key.identity(), 16);
    char buf[file_size];
    ssize_t n = pread(f.fd, buf, file_size, 0);
    if (n < 0)
        return unreadable(path);
    // A new file, or one whose first write never reached the disk.
    bool whole_file = blank(buf, static_cast<std::size_t>(n)) && st.st_size <= off_t(file_size);
    if (!whole_file && st.st_size != off_t(file_size)) {
        if (!ignore_damage)
            return damaged(path, "has the wrong size (" + std::to_string(st.st_size) + " bytes, not " +
                                     std::to_string(file_size) + ")");
        whole_file = true;
    }
    Record current{0, defaults_};
    std::size_t write_at = 0;
    if (!whole_file) {
        bool foreign = false;
        if (auto newest = pick(buf, static_cast<std::size_t>(n), key_hash, foreign)) {
            current = newest->first;
            write_at = newest->second == 0 ? record_size : 0; // overwrite the older record
        } else if (ignore_damage) {
            whole_file = true;
        } else {
            return damaged(path, foreign ? "belongs to another Key" : "is corrupt");
        }
    }

    Record next = current;
    if (!change(next.counts))
        return current.counts;
    if (next.counts == current.counts && !whole_file && !ignore_damage)
        return current.counts;
    if (!in_range(next.counts.user_left, next.counts.user_max) || !in_range(next.counts.so_left, next.counts.so_max))
        return Error{CKR_ARGUMENTS_BAD, "PIN try limits must be between 1 and 15"};
    next.seq = current.seq + 1;

    std::string out;
    if (whole_file) {
        // A whole new file: this record, and a blank slot for the next.
        out = format(next, key_hash) + std::string(record_size, '\0');
        write_at = 0;
    } else {
        out = format(next, key_hash);
    }
    if (whole_file && ftruncate(f.fd, 0) != 0)
        return io_error(path, "write");
    if (pwrite(f.fd, out.data(), out.size(), static_cast<off_t>(write_at)) != static_cast<ssize_t>(out.size()))
        return io_error(path, "write");
    if (sync && fdatasync(f.fd) != 0)
        return io_error(path, "sync");
    if (whole_file) {
        // The new file's name must survive a crash too.
        Fd d;
        d.fd = open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (d.fd >= 0)
            fsync(d.fd);
    }
    return next.counts;
}

} // namespace ukey
