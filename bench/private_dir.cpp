#include "private_dir.h"

#include "p11.h"

#include <stdlib.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <system_error>
#include <vector>

namespace ukey_bench {

TempDir::TempDir() {
    const char* base = secure_getenv("TMPDIR");
    std::string tmpl = std::string(base && *base ? base : "/tmp") + "/ukey-bench.XXXXXX";
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    if (!mkdtemp(buf.data())) {  // mkdtemp creates the directory with mode 0700
        throw Failure("cannot create temporary directory from " + tmpl + ": " +
                      std::strerror(errno));
    }
    path_ = buf.data();
}

TempDir::~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
    if (ec) {
        std::fprintf(stderr, "ukey-bench: warning: could not remove %s: %s\n", path_.c_str(),
                     ec.message().c_str());
    }
}

void make_private_dir(const std::string& path) {
    if (mkdir(path.c_str(), 0700) != 0) {
        throw Failure("cannot create directory " + path + ": " + std::strerror(errno));
    }
}

void write_private_file(const std::string& path, const std::string& text) {
    {
        std::ofstream out(path, std::ios::out | std::ios::trunc);
        out << text;
        out.close();
        if (!out) throw Failure("cannot write " + path);
    }
    if (chmod(path.c_str(), 0600) != 0) {
        throw Failure("cannot chmod " + path + ": " + std::strerror(errno));
    }
}

std::string toml_string(std::string_view s) {
    std::string out = "\"";
    for (char c : s) {
        if (c == '"' || c == '\\') {
            out += '\\';
            out += c;
        } else if (static_cast<unsigned char>(c) < 0x20) {
            char esc[8];
            std::snprintf(esc, sizeof esc, "\\u%04x", static_cast<unsigned>(c));
            out += esc;
        } else {
            out += c;
        }
    }
    return out + "\"";
}

void set_env(const char* name, const std::string& value) {
    if (setenv(name, value.c_str(), 1) != 0) {
        throw Failure(std::string("setenv ") + name + ": " + std::strerror(errno));
    }
}

}  // namespace ukey_bench
