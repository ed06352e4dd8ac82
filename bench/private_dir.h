// ukey-bench's private working folder (mode 0700, removed on exit) and the
// configuration files it writes there.
#pragma once

#include <string>
#include <string_view>

namespace ukey_bench {

class TempDir {
   public:
    TempDir();
    ~TempDir();
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    const std::string& path() const { return path_; }

   private:
    std::string path_;
};

void make_private_dir(const std::string& path);
void write_private_file(const std::string& path, const std::string& text);
// A TOML basic string.
std::string toml_string(std::string_view s);
void set_env(const char* name, const std::string& value);

}  // namespace ukey_bench
