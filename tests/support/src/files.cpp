#include "ukeytest/files.h"

#include "token/toml_read.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <system_error>

namespace fs = std::filesystem;

namespace ukeytest {

TempDir::TempDir(const fs::path& base, const std::string& prefix)
{
    std::string templ = (base / (prefix + "XXXXXX")).string();
    if (!mkdtemp(templ.data()))
        throw std::runtime_error("mkdtemp(" + templ + "): " + std::strerror(errno));
    path_.reset(new fs::path(templ));
}

void TempDir::Remove::operator()(const fs::path* p) const
{
    std::error_code ec;
    fs::remove_all(*p, ec);
    if (ec)
        std::fprintf(stderr, "warning: could not remove %s: %s\n", p->c_str(), ec.message().c_str());
    delete p;
}

std::string read_file(const fs::path& p)
{
    std::ifstream in(p, std::ios::binary);
    if (!in)
        throw std::runtime_error("cannot read " + p.string());
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

void write_file(const fs::path& p, const std::string& data, mode_t mode)
{
    {
        std::ofstream out(p, std::ios::binary | std::ios::trunc);
        if (!out)
            throw std::runtime_error("cannot write " + p.string());
        out << data;
        if (!out.flush())
            throw std::runtime_error("cannot write " + p.string());
    }
    if (chmod(p.c_str(), mode) != 0)
        throw std::runtime_error("chmod " + p.string() + ": " + std::strerror(errno));
}

void make_private_dir(const fs::path& p)
{
    fs::create_directories(p);
    if (chmod(p.c_str(), 0700) != 0)
        throw std::runtime_error("chmod " + p.string() + ": " + std::strerror(errno));
}

std::string toml_string(const std::string& s)
{
    return ukey::toml_read::basic_string(s);
}

}  // namespace ukeytest
