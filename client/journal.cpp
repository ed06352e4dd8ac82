#include "client/journal.h"

#include "client/state_file.h"
#include "client/x509.h"

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

Result<bool> save_journal(const std::filesystem::path& path, const std::string& text)
{
    if (std::string e = write_private_file(path, text); !e.empty())
        return journal_error("cannot keep the renewal journal: " + e);
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
