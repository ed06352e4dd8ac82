// A private scratch folder per fuzz process (0700, in /dev/shm if there is
// one: rewriting a file on ext4 flushes it at each close, which cut runs to
// a few hundred a second), removed at exit; and writing one run's input to a
// file in it, for readers that only take a path.
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>

namespace ukey::fuzz {

inline const std::filesystem::path& scratch_dir()
{
    static const std::filesystem::path* d = [] {
        char shm[] = "/dev/shm/ukey-fuzz-XXXXXX", tmp[] = "/tmp/ukey-fuzz-XXXXXX";
        const char* tmpl = mkdtemp(shm);
        if (!tmpl && !(tmpl = mkdtemp(tmp)))
            std::abort();
        auto* p = new std::filesystem::path(tmpl);
        std::atexit([] {
            std::error_code ec;
            std::filesystem::remove_all(scratch_dir(), ec);
        });
        return p;
    }();
    return *d;
}

// Replaces `path` (mode 0600) with `size` bytes of `data`.
inline void write_input(const std::filesystem::path& path, const uint8_t* data, size_t size)
{
    int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        std::abort();
    for (size_t at = 0; at < size;) {
        ssize_t n = write(fd, data + at, size - at);
        if (n <= 0)
            std::abort();
        at += size_t(n);
    }
    close(fd);
}

} // namespace ukey::fuzz
