#include "token/file_trust.h"

#include "token/log.h"

#include <atomic>
#include <cstdlib>
#include <cerrno>
#include <climits>
#include <cstring>
#include <deque>
#include <string>

#include <pwd.h>
#include <sys/auxv.h>
#include <sys/stat.h>
#include <unistd.h>

namespace ukey {
namespace {

std::atomic<bool> g_refuse{false};
constexpr const char* refusing = "refusing the ";

// A symlink chain longer than this is a loop (the kernel's own limit).
constexpr int max_links = 40;

bool trusted_uid(uid_t u)
{
    if (u == 0)
        return true;
    // The real user of a setuid/setgid program is the one it must be
    // protected from, even when he is also its effective user (setgid).
    return u == geteuid() && !(privileged_process() && u == getuid());
}

std::string who(uid_t u)
{
    std::string s = "uid " + std::to_string(u);
    struct passwd pw, *found = nullptr;
    char buf[1024];
    if (getpwuid_r(u, &pw, buf, sizeof buf, &found) == 0 && found && found->pw_name)
        s += " (" + std::string(found->pw_name) + ")";
    return s;
}

std::string mode_text(mode_t m)
{
    char b[8];
    std::snprintf(b, sizeof b, "%04o", unsigned(m & 07777));
    return b;
}

// The first reason a file or folder is not trustworthy, and its fix.
struct Problem {
    std::string what, fix;
    void note(std::string w, std::string f)
    {
        if (what.empty()) {
            what = std::move(w);
            fix = std::move(f);
        }
    }
};

// A folder we look names up in. Returns whether it is shared (writable by
// others but sticky): then each entry must have a trusted owner.
bool check_dir(const std::string& dir, const struct stat& st, Problem& p)
{
    const std::string fix = "chown root:root " + dir + " && chmod go-w " + dir;
    if (!trusted_uid(st.st_uid))
        p.note("its folder " + dir + " is owned by " + who(st.st_uid), fix);
    if (!(st.st_mode & (S_IWGRP | S_IWOTH)))
        return false;
    if (st.st_mode & S_ISVTX)
        return true; // like /tmp: others cannot rename or delete what is not theirs
    p.note("its folder " + dir + " is writable by group or others (mode " + mode_text(st.st_mode) + ")", fix);
    return false;
}

void split_into(std::deque<std::string>& todo, const std::string& path)
{
    std::deque<std::string> parts;
    std::size_t at = 0;
    while (at <= path.size()) {
        std::size_t slash = path.find('/', at);
        if (slash == std::string::npos)
            slash = path.size();
        if (slash > at)
            parts.push_back(path.substr(at, slash - at));
        at = slash + 1;
    }
    todo.insert(todo.begin(), parts.begin(), parts.end());
}

std::string parent_of(const std::string& dir)
{
    std::size_t slash = dir.rfind('/');
    return slash == 0 || slash == std::string::npos ? "/" : dir.substr(0, slash);
}

Error lookup_error(const std::filesystem::path& path, const std::string& where, int err)
{
    std::string m = path.string();
    if (where != path.string())
        m += " (at " + where + ")";
    return Error{CKR_FUNCTION_FAILED, m + ": " + std::strerror(err)};
}

} // namespace

bool privileged_process()
{
    return getauxval(AT_SECURE) != 0;
}

std::vector<std::string> scrub_backend_environment()
{
    std::vector<std::string> removed;
    if (!privileged_process())
        return removed;
    // Known variables of the backends ukey documents (docs/security.md).
    static const char* const names[] = {"SOFTHSM2_CONF", "SOFTHSM_CONF",  "OPENSC_CONF",
                                        "OPENSC_DRIVER", "PCSCLITE_CSOCK_NAME", "PCSCLITE_DEBUG"};
    // secure_getenv would hide them here (AT_SECURE), so their presence is
    // read from the environment block by name; no value is ever used.
    for (const char* n : names) {
        const std::size_t len = std::strlen(n);
        bool present = false;
        for (char** e = environ; e && *e && !present; ++e)
            present = std::strncmp(*e, n, len) == 0 && (*e)[len] == '=';
        if (present) {
            unsetenv(n);
            removed.emplace_back(n);
        }
    }
    return removed;
}

bool untrusted_files_refused()
{
    return g_refuse.load(std::memory_order_relaxed) || privileged_process() || geteuid() == 0;
}

bool is_refusal(const Error& e)
{
    return e.message.rfind(refusing, 0) == 0;
}

void refuse_untrusted_files()
{
    g_refuse = true;
}

Result<std::filesystem::path> trusted_file(const std::filesystem::path& path, std::string_view what)
{
    std::string start = path.string();
    if (start.empty())
        return Error{CKR_FUNCTION_FAILED, "an empty path"};
    if (start[0] != '/') {
        char cwd[PATH_MAX];
        if (!getcwd(cwd, sizeof cwd))
            return lookup_error(path, "the current folder", errno);
        start = std::string(cwd) + "/" + start;
    }
    std::deque<std::string> todo;
    split_into(todo, start);

    Problem problem;
    std::string cur = "/";
    struct stat st;
    if (lstat("/", &st) != 0)
        return lookup_error(path, "/", errno);
    bool shared = check_dir(cur, st, problem);
    int links = 0;
    bool file = false; // the walk ended on a regular file, not on a folder ("x/..")
    while (!todo.empty()) {
        file = false;
        const std::string name = todo.front();
        todo.pop_front();
        if (name == ".")
            continue;
        if (name == "..") {
            cur = parent_of(cur);
            if (lstat(cur.c_str(), &st) != 0)
                return lookup_error(path, cur, errno);
            shared = check_dir(cur, st, problem);
            continue;
        }
        const std::string next = (cur == "/" ? "" : cur) + "/" + name;
        if (lstat(next.c_str(), &st) != 0)
            return lookup_error(path, next, errno);
        if (shared && !trusted_uid(st.st_uid))
            problem.note(next + " is owned by " + who(st.st_uid) + " in " + cur + ", a folder everyone may write to",
                         "move it to a folder only root can change");
        if (S_ISLNK(st.st_mode)) {
            if (++links > max_links)
                return lookup_error(path, next, ELOOP);
            char target[PATH_MAX];
            ssize_t n = readlink(next.c_str(), target, sizeof target - 1);
            if (n < 0)
                return lookup_error(path, next, errno);
            target[n] = '\0';
            split_into(todo, target);
            if (target[0] == '/') {
                cur = "/";
                if (lstat("/", &st) != 0)
                    return lookup_error(path, "/", errno);
                shared = check_dir(cur, st, problem);
            }
            continue;
        }
        if (!todo.empty()) {
            if (!S_ISDIR(st.st_mode))
                return lookup_error(path, next, ENOTDIR);
            cur = next;
            shared = check_dir(cur, st, problem);
            continue;
        }
        if (!S_ISREG(st.st_mode))
            return Error{CKR_FUNCTION_FAILED, path.string() + (next != path.string() ? " (" + next + ")" : "") +
                                                  " is not a regular file"};
        const std::string fix = "chown root:root " + next + " && chmod go-w " + next;
        if (!trusted_uid(st.st_uid))
            problem.note("it is owned by " + who(st.st_uid) + ", not by root" +
                             (trusted_uid(geteuid()) && geteuid() != 0 ? " or " + who(geteuid()) : std::string()),
                         fix);
        if (st.st_mode & (S_IWGRP | S_IWOTH))
            problem.note("it is writable by group or others (mode " + mode_text(st.st_mode) + ")", fix);
        cur = next;
        file = true;
    }
    if (!file)
        return Error{CKR_FUNCTION_FAILED, path.string() + " is not a regular file"};
    if (problem.what.empty())
        return std::filesystem::path(cur);
    std::string named = path.string() + (cur != path.string() ? " (" + cur + ")" : "");
    if (untrusted_files_refused())
        return Error{CKR_FUNCTION_FAILED, refusing + std::string(what) + " " + named + ": " + problem.what +
                                              ", so another user could decide what code runs here; fix: " +
                                              problem.fix};
    log::warning("the " + std::string(what) + " " + named + " is not safe: " + problem.what +
                 "; using it anyway, since this process runs with your own rights only (root and setuid "
                 "programs refuse it); fix: " + problem.fix);
    return std::filesystem::path(cur);
}

} // namespace ukey
