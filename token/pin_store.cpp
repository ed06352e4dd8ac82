#include "token/pin_store.h"
#include "token/docs.h"

#include "token/files.h"
#include "token/fork.h"

#include <openssl/evp.h>

#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdlib>
#include <algorithm>
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
    snprintf(body, sizeof body, "ukey-pin 2 seq=%llu user=%u/%u so=%u/%u change=%d policy=%d key=%s", r.seq,
             r.counts.user_left, r.counts.user_max, r.counts.so_left, r.counts.so_max,
             r.counts.user_must_change ? 1 : 0, r.counts.policy_on_key ? 1 : 0, key_hash.c_str());
    std::string line = std::string(body) + " sum=" + hex_sha256(body, 16);
    line.resize(record_size - 1, ' ');
    line += '\n';
    return line;
}

bool in_range(unsigned left, unsigned max)
{
    return max >= min_tries && max <= max_tries && left <= max;
}

// One record, or nothing if it is torn, blank or altered. Version 1 records
// (before policy objects on Keys) read as policy=0.
std::optional<Record> parse(const char* p, const std::string& key_hash, bool& foreign)
{
    std::string text(p, record_size);
    auto sum_at = text.find(" sum=");
    const bool v1 = text.compare(0, 11, "ukey-pin 1 ") == 0, v2 = text.compare(0, 11, "ukey-pin 2 ") == 0;
    if (sum_at == std::string::npos || (!v1 && !v2))
        return std::nullopt;
    const std::string body = text.substr(0, sum_at);
    if (text.compare(sum_at + 5, 16, hex_sha256(body, 16)) != 0)
        return std::nullopt;
    Record r;
    unsigned ul, um, sl, sm;
    int change, policy = 0;
    char key[64] = {0};
    const bool read =
        v1 ? sscanf(body.c_str(), "ukey-pin 1 seq=%llu user=%u/%u so=%u/%u change=%d key=%63s", &r.seq, &ul, &um,
                    &sl, &sm, &change, key) == 7
           : sscanf(body.c_str(), "ukey-pin 2 seq=%llu user=%u/%u so=%u/%u change=%d policy=%d key=%63s", &r.seq,
                    &ul, &um, &sl, &sm, &change, &policy, key) == 8;
    if (!read)
        return std::nullopt;
    if (!in_range(ul, um) || !in_range(sl, sm) || (change != 0 && change != 1) || (policy != 0 && policy != 1))
        return std::nullopt;
    if (key_hash != key) {
        foreign = true;
        return std::nullopt;
    }
    r.counts = PinCounts{ul, um, sl, sm, change == 1, policy == 1};
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
    return Error{CKR_PIN_LOCKED,
                 "PIN state " + path.string() + " " + why + ": the Key is treated as locked until this is repaired (" +
                     (fix.empty() ? "if you know how it broke, remove the file and the Key starts again with full "
                                    "counts; else have an administrator check it (" UKEY_DOC("pin-policy.md") ", \"Recovery\")"
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

// No state folder, and none can be made (typically: a user whose home folder
// does not exist). Logins are refused: a try that cannot be recorded is not
// allowed.
Error no_state_folder(const std::filesystem::path& dir, const std::string& why)
{
    return Error{CKR_FUNCTION_FAILED,
                 "ukey has no state folder to count PIN tries in: " + dir.string() + " does not exist and cannot be "
                 "created (" + why + "); create your home folder, or set state_dir in ukey.conf to a folder of "
                 "yours. Until then PIN logins through ukey are refused"};
}

// Folder `d` can be made, or why not: the nearest folder that exists must
// let us create in it.
Result<void> creatable(const std::filesystem::path& d)
{
    struct stat st;
    std::filesystem::path up = d.parent_path();
    while (lstat(up.c_str(), &st) != 0) {
        if (errno != ENOENT || !up.has_relative_path())
            return Error{CKR_FUNCTION_FAILED, "cannot look into " + up.string() + ": " + std::strerror(errno)};
        up = up.parent_path();
    }
    if (!S_ISDIR(st.st_mode))
        return Error{CKR_FUNCTION_FAILED, up.string() + " is not a folder"};
    if (faccessat(AT_FDCWD, up.c_str(), W_OK | X_OK, AT_EACCESS) != 0)
        return Error{CKR_FUNCTION_FAILED, "no permission to create anything in " + up.string()};
    return {};
}

// Whether the locked descriptor is still the file at `path` (a reset may
// have put a new file there meanwhile).
bool still_at(int fd, const std::filesystem::path& path)
{
    struct stat a, b;
    return fstat(fd, &a) == 0 && lstat(path.c_str(), &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

// The pid a holder of the attempt lock wrote into it, if any.
std::optional<long> holder_pid(int fd)
{
    char buf[24] = {0};
    const ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    if (n <= 0)
        return std::nullopt;
    char* end = nullptr;
    const long pid = std::strtol(buf, &end, 10);
    if (pid <= 0 || end == buf || *end != '\n')
        return std::nullopt;
    return pid;
}

} // namespace

PinStore::PinStore(std::filesystem::path dir, PinCounts defaults, std::chrono::milliseconds attempt_wait)
    : dir_(std::move(dir)), defaults_(defaults), attempt_wait_(attempt_wait)
{
}

std::filesystem::path PinStore::path_of(const KeyId& key) const
{
    return dir_ / (sanitize(key.backend) + "-" + sanitize(key.serial) + "-" + hex_sha256(key.identity(), 12) +
                   ".pin");
}

Result<void> PinStore::ensure_dir() const
{
    return ensure_dirs({dir_.parent_path(), dir_});
}

// Create what is missing with 0700; an existing folder must already be ours
// and private.
Result<void> PinStore::ensure_dirs(std::initializer_list<std::filesystem::path> dirs) const
{
    std::error_code ec;
    for (const auto& d : dirs) {
        if (mkdir(d.c_str(), 0700) != 0 && errno != EEXIST) {
            std::filesystem::create_directories(d.parent_path(), ec);
            if (mkdir(d.c_str(), 0700) != 0 && errno != EEXIST) {
                const std::string err = std::strerror(errno);
                const auto can = creatable(d);
                return no_state_folder(dir_.parent_path(), can ? err : can.error().message);
            }
        }
        struct stat st;
        if (lstat(d.c_str(), &st) != 0)
            return io_error(d, "inspect the folder of");
        if (auto mine = private_to_us(st, true); !mine)
            return unsafe(d, "folder " + mine.error().message, true);
    }
    return {};
}

Result<bool> PinStore::check_dirs() const
{
    for (const auto& d : {dir_.parent_path(), dir_}) {
        struct stat st;
        if (lstat(d.c_str(), &st) != 0) {
            if (errno != ENOENT)
                return io_error(d, "inspect the folder of");
            // Missing: fine if it can be made when the first try is taken.
            if (auto can = creatable(d); !can)
                return no_state_folder(dir_.parent_path(), can.error().message);
            return false;
        }
        if (auto mine = private_to_us(st, true); !mine)
            return unsafe(d, "folder " + mine.error().message, true);
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
    if (auto mine = private_to_us(st, false); !mine)
        return unsafe(path, mine.error().message, false);
    if (flock(f.fd, LOCK_SH) != 0)
        return io_error(path, "lock");
    char buf[file_size];
    ssize_t n = pread(f.fd, buf, file_size, 0);
    if (n < 0)
        return unreadable(path);
    // Files are created whole: an existing file that is not a valid record
    // is damage, never a fresh start.
    if (fstat(f.fd, &st) != 0 || st.st_size != off_t(file_size))
        return damaged(path, st.st_size == 0 ? "is empty"
                                             : "has the wrong size (" + std::to_string(st.st_size) + " bytes, not " +
                                                   std::to_string(file_size) + ")");
    if (blank(buf, static_cast<std::size_t>(n)))
        return damaged(path, "is blank (all zeros)");
    const std::string key_hash = hex_sha256(key.identity(), 16);
    bool foreign = false;
    auto newest = pick(buf, static_cast<std::size_t>(n), key_hash, foreign);
    if (!newest)
        return damaged(path, foreign ? "belongs to another Key" : "is corrupt");
    return newest->first.counts;
}

PinStore::AttemptLock::~AttemptLock()
{
    if (fd_ >= 0) {
        // The pid goes before the lock does, so a waiter never names a
        // process that is done.
        if (ftruncate(fd_, 0) != 0) {
        }
        close(fd_); // drops the flock
    }
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
    struct stat st;
    if (fstat(fd, &st) != 0 || !private_to_us(st, false)) {
        close(fd);
        return unsafe(path, "is not a private file of this user", false);
    }
    // A process stopped (or stuck in a driver) while holding the lock would
    // otherwise block every login to this Key: wait a bounded time, polling.
    const auto deadline = std::chrono::steady_clock::now() + attempt_wait_;
    long pause_us = 500;
    while (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        if (errno == EINTR)
            continue;
        if (errno != EWOULDBLOCK) {
            Error e = io_error(path, "lock");
            close(fd);
            return e;
        }
        if (std::chrono::steady_clock::now() >= deadline) {
            const auto pid = holder_pid(fd);
            const auto secs = std::chrono::duration_cast<std::chrono::seconds>(attempt_wait_).count();
            close(fd);
            const std::string who = pid ? "another process (pid " + std::to_string(*pid) + ")" : "another process";
            return Error{CKR_FUNCTION_FAILED,
                         who + " has been trying a PIN on this Key for " + std::to_string(secs) +
                             " s and still holds " + path.string() + "; if it is stuck, stop it" +
                             (pid ? " (kill " + std::to_string(*pid) + ")" : std::string()) + " and try again"};
        }
        usleep(static_cast<useconds_t>(pause_us));
        pause_us = std::min(pause_us * 2, 50000L);
    }
    AttemptLock guard(fd);
    const std::string me = std::to_string(getpid()) + "\n";
    if (ftruncate(fd, 0) != 0 || pwrite(fd, me.data(), me.size(), 0) != static_cast<ssize_t>(me.size())) {
        // Only the waiters' message loses the pid.
    }
    return guard;
}

Result<PinCounts> PinStore::update(const KeyId& key, const std::function<bool(PinCounts&)>& change, bool sync)
{
    return apply(key, change, sync);
}

Result<PinCounts> PinStore::reset(const KeyId& key, const PinCounts& fresh)
{
    ForkGuard no_fork_meanwhile;
    if (auto ok = ensure_dir(); !ok)
        return ok.error();
    const auto path = path_of(key);
    // Whatever is in the way goes, as long as the folder is ours. A regular
    // file is locked first, so updates that hold it finish before it is
    // replaced (and later ones see the new file: still_at()).
    Fd old;
    struct stat st;
    if (lstat(path.c_str(), &st) == 0) {
        if (S_ISREG(st.st_mode)) {
            old.fd = open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
            if (old.fd >= 0 && flock(old.fd, LOCK_EX) != 0)
                return io_error(path, "lock");
        } else if (unlink(path.c_str()) != 0) {
            return unreadable(path);
        }
    }
    if (auto done = install(key, fresh, true); !done)
        return done.error();
    return fresh;
}

Result<bool> PinStore::install(const KeyId& key, const PinCounts& counts, bool replace)
{
    const auto path = path_of(key);
    static std::atomic<unsigned> serial{0};
    auto tmp = path;
    tmp += ".new-" + std::to_string(getpid()) + "-" + std::to_string(serial.fetch_add(1));
    Fd f;
    f.fd = open(tmp.c_str(), O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (f.fd < 0 && errno == EEXIST && unlink(tmp.c_str()) == 0) // left by a crashed process with our pid
        f.fd = open(tmp.c_str(), O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (f.fd < 0)
        return io_error(tmp, "create");
    struct Unlink {
        const std::filesystem::path& p;
        ~Unlink() { unlink(p.c_str()); }
    } drop_tmp{tmp};
    // This record, and a blank slot for the next.
    const std::string out = format(Record{1, counts}, hex_sha256(key.identity(), 16)) + std::string(record_size, '\0');
    if (pwrite(f.fd, out.data(), out.size(), 0) != static_cast<ssize_t>(out.size()))
        return io_error(tmp, "write");
    // The contents are on disk before the name is.
    if (fdatasync(f.fd) != 0)
        return io_error(tmp, "sync");
    if (replace) {
        if (rename(tmp.c_str(), path.c_str()) != 0)
            return unreadable(path);
    } else if (link(tmp.c_str(), path.c_str()) != 0) {
        if (errno == EEXIST)
            return false;
        return io_error(path, "create");
    }
    Fd d;
    d.fd = open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (d.fd >= 0)
        fsync(d.fd);
    return true;
}

Result<PinCounts> PinStore::apply(const KeyId& key, const std::function<bool(PinCounts&)>& change, bool sync)
{
    ForkGuard no_fork_meanwhile; // a child must not inherit our flock'd descriptor
    if (auto ok = ensure_dir(); !ok)
        return ok.error();
    const auto path = path_of(key);
    const std::string key_hash = hex_sha256(key.identity(), 16);
    Fd f;
    for (int round = 0;; ++round) {
        if (round == 100)
            return io_error(path, "settle on one"); // replaced 100 times in a row: something is very wrong
        if (f.fd >= 0) {
            close(f.fd);
            f.fd = -1;
        }
        f.fd = open(path.c_str(), O_RDWR | O_NOFOLLOW | O_CLOEXEC);
        if (f.fd < 0 && errno == ENOENT) {
            // No record yet: the first one is written whole, or not at all.
            PinCounts first = defaults_;
            if (!change(first))
                return defaults_;
            if (!in_range(first.user_left, first.user_max) || !in_range(first.so_left, first.so_max))
                return Error{CKR_ARGUMENTS_BAD, "PIN try limits must be between 1 and 15"};
            auto made = install(key, first, false);
            if (!made)
                return made.error();
            if (*made)
                return first;
            continue; // another process created it first: update theirs
        }
        if (f.fd < 0)
            return unreadable(path);
        if (flock(f.fd, LOCK_EX) != 0)
            return io_error(path, "lock");
        if (still_at(f.fd, path))
            break;
    }
    struct stat st;
    if (fstat(f.fd, &st) != 0)
        return io_error(path, "inspect");
    if (auto mine = private_to_us(st, false); !mine)
        return unsafe(path, mine.error().message, false);

    char buf[file_size];
    ssize_t n = pread(f.fd, buf, file_size, 0);
    if (n < 0)
        return unreadable(path);
    if (st.st_size != off_t(file_size))
        return damaged(path, st.st_size == 0 ? "is empty"
                                             : "has the wrong size (" + std::to_string(st.st_size) + " bytes, not " +
                                                   std::to_string(file_size) + ")");
    if (blank(buf, static_cast<std::size_t>(n)))
        return damaged(path, "is blank (all zeros)");
    bool foreign = false;
    auto newest = pick(buf, static_cast<std::size_t>(n), key_hash, foreign);
    if (!newest)
        return damaged(path, foreign ? "belongs to another Key" : "is corrupt");
    const Record current = newest->first;
    const std::size_t write_at = newest->second == 0 ? record_size : 0; // overwrite the older record

    Record next = current;
    if (!change(next.counts) || next.counts == current.counts)
        return current.counts;
    if (!in_range(next.counts.user_left, next.counts.user_max) || !in_range(next.counts.so_left, next.counts.so_max))
        return Error{CKR_ARGUMENTS_BAD, "PIN try limits must be between 1 and 15"};
    next.seq = current.seq + 1;
    const std::string out = format(next, key_hash);
    if (pwrite(f.fd, out.data(), out.size(), static_cast<off_t>(write_at)) != static_cast<ssize_t>(out.size()))
        return io_error(path, "write");
    if (sync && fdatasync(f.fd) != 0)
        return io_error(path, "sync");
    return next.counts;
}

} // namespace ukey
