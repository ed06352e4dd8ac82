#include "private_dir.h"

#include "p11.h"

#include <stdlib.h>

#include <cerrno>
#include <cstring>

namespace ukey_bench {

std::string temp_base() {
    const char* base = secure_getenv("TMPDIR");
    return base && *base ? base : "/tmp";
}

void set_env(const char* name, const std::string& value) {
    if (setenv(name, value.c_str(), 1) != 0) {
        throw Failure(std::string("setenv ") + name + ": " + std::strerror(errno));
    }
}

}  // namespace ukey_bench
