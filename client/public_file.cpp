// Public files the tools write: certificates and requests (see public_file.h).
#include "client/public_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

namespace ukey::client {

namespace {

Error refused(std::string why)
{
    return Error{CKR_OK, std::move(why)};
}

} // namespace

Result<void> write_file(const std::string& path, std::span<const unsigned char> data)
{
    const mode_t mask = umask(0);
    umask(mask);
    return write_file(path, data, 0644 & ~mask);
}

Result<void> write_file(const std::string& path, std::span<const unsigned char> data, mode_t mode)
{
    // Never through a symbolic link, never truncating in place: root
    // exporting into /tmp must not overwrite the file a planted link points
    // to. A new file in the same folder (O_EXCL), renamed over the name;
    // rename() replaces a link that appears meanwhile instead of following it.
    struct stat st;
    if (lstat(path.c_str(), &st) == 0) {
        if (S_ISLNK(st.st_mode))
            return refused("it is a symbolic link (ukey does not write through links: give the file's own path)");
        if (!S_ISREG(st.st_mode))
            return refused("it is not a regular file");
    }
    const std::filesystem::path p(path);
    if (p.filename().empty() || p.filename() == "." || p.filename() == "..")
        return refused("it is not a file name");
    std::string tmp = (p.parent_path() / std::string(".").append(p.filename().string()).append(".XXXXXX")).string();
    int fd = mkostemp(tmp.data(), O_CLOEXEC);
    if (fd < 0)
        return refused(std::strerror(errno));
    auto fail = [&](int err) {
        close(fd);
        unlink(tmp.c_str());
        return refused(std::strerror(err));
    };
    if (fchmod(fd, mode) != 0)
        return fail(errno);
    std::size_t done = 0;
    while (done < data.size()) {
        ssize_t n = ::write(fd, data.data() + done, data.size() - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return fail(n < 0 ? errno : EIO);
        done += static_cast<std::size_t>(n);
    }
    if (fsync(fd) != 0)
        return fail(errno);
    if (close(fd) != 0) {
        int err = errno;
        unlink(tmp.c_str());
        return refused(std::strerror(err));
    }
    if (rename(tmp.c_str(), path.c_str()) != 0) {
        int err = errno;
        unlink(tmp.c_str());
        return refused(std::strerror(err));
    }
    return {};
}

Result<void> make_public_dirs(const std::string& dir)
{
    const std::filesystem::path d(dir);
    std::error_code ec;
    if (d.empty() || std::filesystem::is_directory(d, ec))
        return {};
    if (d.has_parent_path() && d.parent_path() != d)
        if (auto up = make_public_dirs(d.parent_path().string()); !up)
            return up;
    if (mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST)
        return refused(dir + ": cannot create the folder: " + std::strerror(errno));
    chmod(dir.c_str(), 0755); // mkdir's mode is less the umask
    return {};
}

Result<void> write_public_file(const std::string& path, std::string_view text, mode_t mode)
{
    if (auto d = make_public_dirs(std::filesystem::path(path).parent_path().string()); !d)
        return d;
    return write_file(path, {reinterpret_cast<const unsigned char*>(text.data()), text.size()}, mode);
}

} // namespace ukey::client
