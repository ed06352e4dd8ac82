#include "client/state_file.h"

#include "token/files.h"

#include <cerrno>
#include <cstring>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace ukey::client {

namespace {

Error refused(std::string why)
{
    return Error{CKR_FUNCTION_FAILED, std::move(why)};
}

} // namespace

Result<void> make_private_dir(const std::filesystem::path& dir)
{
    std::error_code ec;
    std::filesystem::path parent = dir.parent_path();
    if (!parent.empty() && parent != dir && !std::filesystem::exists(parent, ec))
        if (auto e = make_private_dir(parent); !e)
            return e;
    if (mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST)
        return refused("cannot create " + dir.string() + ": " + std::strerror(errno));
    struct stat st;
    if (lstat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
        return refused(dir.string() + " is not a folder");
    if (st.st_mode & 022)
        return refused(dir.string() + " is writable by other users: fix its mode (chmod 700)");
    return {};
}

bool sync_dir(const std::filesystem::path& dir)
{
    int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return false;
    bool ok = fsync(fd) == 0;
    close(fd);
    return ok;
}

Result<void> write_private_file(const std::filesystem::path& path, const std::string& text)
{
    if (auto e = make_private_dir(path.parent_path()); !e)
        return e;
    const std::string tmp = path.string() + ".tmp";
    int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return refused("cannot write " + tmp + ": " + std::strerror(errno));
    fchmod(fd, 0600);
    auto fail = [&](const char* doing) {
        int err = errno;
        close(fd);
        unlink(tmp.c_str());
        return refused(std::string("cannot ") + doing + " " + tmp + ": " + std::strerror(err));
    };
    if (!write_all(fd, text))
        return fail("write");
    if (fsync(fd) != 0)
        return fail("sync");
    close(fd);
    if (rename(tmp.c_str(), path.c_str()) != 0) {
        int err = errno;
        unlink(tmp.c_str());
        return refused("cannot replace " + path.string() + ": " + std::strerror(err));
    }
    sync_dir(path.parent_path());
    return {};
}

Result<void> remove_private_file(const std::filesystem::path& path)
{
    if (unlink(path.c_str()) != 0 && errno != ENOENT)
        return Error{CKR_OK, "cannot remove " + path.string() + ": " + std::strerror(errno)};
    sync_dir(path.parent_path());
    return {};
}

} // namespace ukey::client
