// Fuzz target: the PIN state records (token/pin_store.cpp). The record
// parser is internal to pin_store.cpp, so the input is the Key's state file
// itself (<state_dir>/pin/<key>.pin, 0600 in 0700 folders) and goes through
// PinStore::read, and PinStore::update (which reads, then rewrites).
//
// Each record carries a SHA-256 check over its text that a fuzzer would
// never get right by mutation, so input byte 0 decides: bit 0 set, the
// harness rewrites the check of each 256-byte record to match its text
// (reaching the field parser: counts, ranges, the Key hash); bit 1 set, an
// update runs after the read. The rest of the input is the file.
#include "fuzz_dir.h"
#include "token/config.h"
#include "token/log.h"
#include "token/pin_store.h"

#include <openssl/evp.h>

#include <sys/stat.h>

#include <cstdint>
#include <string>

using namespace ukey;

namespace {

std::string hex_sha256_16(const std::string& s)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_Digest(s.data(), s.size(), md, &n, EVP_sha256(), nullptr);
    static const char* digits = "0123456789abcdef";
    std::string out;
    for (unsigned i = 0; i < 8; ++i) {
        out += digits[md[i] >> 4];
        out += digits[md[i] & 15];
    }
    return out;
}

// The file format of pin_store.cpp: records of 256 bytes, "... sum=<16 hex>".
void fix_sums(std::string& file)
{
    for (std::size_t at = 0; at + 256 <= file.size() && at < 512; at += 256) {
        std::string rec = file.substr(at, 256);
        auto sum = rec.find(" sum=");
        if (sum == std::string::npos || sum + 5 + 16 > 256)
            continue;
        file.replace(at + sum + 5, 16, hex_sha256_16(rec.substr(0, sum)));
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    static const std::filesystem::path dir = [] {
        log::configure({log::Level::error, true, false});
        auto state = fuzz::scratch_dir() / "state";
        mkdir(state.c_str(), 0700);
        mkdir((state / "pin").c_str(), 0700);
        return state / "pin";
    }();
    if (size == 0)
        return 0;
    const uint8_t mode = data[0];
    std::string file(reinterpret_cast<const char*>(data + 1), size - 1);
    if (mode & 1)
        fix_sums(file);
    // The Key the seeds were written for (tests/fuzz/README.md).
    const KeyId key{"softhsm2", "SoftHSM project", "SoftHSM v2", "0123456789abcdef"};
    PinStore store(dir, PinCounts{}, Config{}.pin_attempt_wait);
    fuzz::write_input(store.path_of(key), reinterpret_cast<const uint8_t*>(file.data()), file.size());
    auto counts = store.read(key);
    if (counts && (counts->user_left > counts->user_max || counts->so_left > counts->so_max))
        std::abort(); // the reader's range checks let through what they must not
    if (mode & 2) {
        auto after = store.update(key, [](PinCounts& c) {
            if (c.user_left == 0)
                return false;
            --c.user_left;
            return true;
        }, false);
        (void)after;
    }
    return 0;
}
