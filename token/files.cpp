#include "token/files.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>

namespace ukey {

namespace {

Error file_error(const std::string& why)
{
    return Error{CKR_OK, why};
}

std::string size_text(std::size_t max)
{
    if (max >= (1u << 20) && max % (1u << 20) == 0)
        return std::to_string(max >> 20) + " MiB";
    if (max >= 1024 && max % 1024 == 0)
        return std::to_string(max >> 10) + " KiB";
    return std::to_string(max) + " bytes";
}

} // namespace

Result<std::string> read_fd(int fd, std::size_t max)
{
    std::string out;
    char buf[65536];
    for (;;) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return file_error(std::strerror(errno));
        if (n == 0)
            return out;
        if (out.size() + static_cast<std::size_t>(n) > max)
            return file_error("it is larger than " + size_text(max));
        out.append(buf, static_cast<std::size_t>(n));
    }
}

Result<std::optional<std::string>> read_file_if_exists(const std::filesystem::path& path, std::size_t max)
{
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        if (errno == ENOENT)
            return std::optional<std::string>();
        return file_error(std::strerror(errno));
    }
    auto text = read_fd(fd, max);
    ::close(fd);
    if (!text)
        return text.error();
    return std::optional<std::string>(std::move(*text));
}

Result<std::string> read_file(const std::filesystem::path& path, std::size_t max)
{
    auto text = read_file_if_exists(path, max);
    if (!text)
        return text.error();
    if (!*text)
        return file_error(std::strerror(ENOENT));
    return std::move(**text);
}

Result<void> private_to_us(const struct stat& st, bool folder)
{
    auto why = [](std::string what) { return Error{CKR_FUNCTION_FAILED, std::move(what)}; };
    if ((st.st_mode & S_IFMT) != (folder ? S_IFDIR : S_IFREG))
        return why(folder ? "is not a folder" : "is not a regular file");
    if (st.st_uid != geteuid())
        return why("is owned by another user (uid " + std::to_string(st.st_uid) + ")");
    if (st.st_mode & 077) {
        char mode[8];
        std::snprintf(mode, sizeof mode, "%03o", unsigned(st.st_mode & 0777));
        return why("is open to other users (mode " + std::string(mode) + ", must be " + (folder ? "700)" : "600)"));
    }
    return {};
}

bool write_all(int fd, std::string_view s)
{
    while (!s.empty()) {
        const ssize_t w = write(fd, s.data(), s.size());
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        s.remove_prefix(std::size_t(w));
    }
    return true;
}

} // namespace ukey
