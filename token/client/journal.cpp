#include "journal.h"

#include "x509.h"

#include <openssl/evp.h>

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <sstream>
#include <sys/stat.h>
#include <unistd.h>

namespace ukey::client {

namespace {

Error journal_error(const std::string& what)
{
    return Error{CKR_OK, what};
}

// mkdir -p with 0700 for the folders made here; an existing folder keeps its
// mode but must not be writable by others.
std::string make_private_dir(const std::filesystem::path& dir)
{
    std::error_code ec;
    std::filesystem::path parent = dir.parent_path();
    if (!parent.empty() && parent != dir && !std::filesystem::exists(parent, ec))
        if (std::string e = make_private_dir(parent); !e.empty())
            return e;
    if (mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST)
        return "cannot create " + dir.string() + ": " + std::strerror(errno);
    struct stat st;
    if (lstat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
        return dir.string() + " is not a folder";
    if (st.st_mode & 022)
        return dir.string() + " is writable by other users: fix its mode (chmod 700)";
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

} // namespace

std::string key_identity(const std::string& backend, const std::string& manufacturer, const std::string& model,
                         const std::string& serial)
{
    return backend + "/" + manufacturer + "/" + model + "/" + serial;
}

std::filesystem::path journal_dir(const std::filesystem::path& state_dir)
{
    return state_dir / "renewal";
}

std::filesystem::path journal_path(const std::filesystem::path& state_dir, const std::string& identity)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_Digest(identity.data(), identity.size(), md, &n, EVP_sha256(), nullptr);
    return journal_dir(state_dir) / (to_hex({md, std::min(n, 16u)}) + ".json");
}

Result<std::optional<std::string>> load_journal(const std::filesystem::path& path)
{
    std::ifstream in(path);
    if (!in) {
        if (errno == ENOENT)
            return std::optional<std::string>();
        return journal_error("cannot read the renewal journal " + path.string() + ": " + std::strerror(errno));
    }
    std::ostringstream text;
    text << in.rdbuf();
    return std::optional<std::string>(text.str());
}

Result<bool> save_journal(const std::filesystem::path& path, const std::string& data)
{
    if (std::string e = make_private_dir(path.parent_path()); !e.empty())
        return journal_error("cannot keep the renewal journal: " + e);
    const std::string tmp = path.string() + ".tmp";
    const std::string& text = data;
    int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return journal_error("cannot write the renewal journal " + tmp + ": " + std::strerror(errno));
    fchmod(fd, 0600);
    std::size_t done = 0;
    while (done < text.size()) {
        ssize_t w = write(fd, text.data() + done, text.size() - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            int err = errno;
            close(fd);
            unlink(tmp.c_str());
            return journal_error("cannot write the renewal journal " + tmp + ": " + std::strerror(err));
        }
        done += static_cast<std::size_t>(w);
    }
    if (fsync(fd) != 0) {
        int err = errno;
        close(fd);
        unlink(tmp.c_str());
        return journal_error("cannot sync the renewal journal " + tmp + ": " + std::strerror(err));
    }
    close(fd);
    if (rename(tmp.c_str(), path.c_str()) != 0) {
        int err = errno;
        unlink(tmp.c_str());
        return journal_error("cannot replace the renewal journal " + path.string() + ": " + std::strerror(err));
    }
    sync_dir(path.parent_path());
    return true;
}

Result<bool> remove_journal(const std::filesystem::path& path)
{
    if (unlink(path.c_str()) != 0 && errno != ENOENT)
        return journal_error("cannot remove the renewal journal " + path.string() + ": " + std::strerror(errno));
    sync_dir(path.parent_path());
    return true;
}

} // namespace ukey::client
