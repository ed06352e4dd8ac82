// Files of the test suites and of ukey-bench: a private temporary folder,
// whole files read and written, private folders, TOML strings. Failures
// throw std::runtime_error naming the path. Needs neither gtest nor PKCS#11:
// ukey-bench builds it too, with or without the tests (files.cmake).
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <memory>
#include <string>

namespace ukeytest {

// A folder base/<prefix>XXXXXX made by mkdtemp (mode 0700), removed with
// all it holds when the TempDir goes (a failure to remove is a warning on
// stderr). Movable, not copyable.
class TempDir {
public:
    TempDir(const std::filesystem::path& base, const std::string& prefix);
    const std::filesystem::path& path() const { return *path_; }

private:
    struct Remove {
        void operator()(const std::filesystem::path* p) const;
    };
    std::unique_ptr<const std::filesystem::path, Remove> path_;
};

std::string read_file(const std::filesystem::path& p);
// Written whole, then given `mode`.
void write_file(const std::filesystem::path& p, const std::string& data, mode_t mode = 0600);
// Created with its parents if need be; mode 0700.
void make_private_dir(const std::filesystem::path& p);
// A TOML basic string: quoted, with '"', '\\' and control characters escaped.
std::string toml_string(const std::string& s);

}  // namespace ukeytest
