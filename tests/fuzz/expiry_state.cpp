// Fuzz target: ukeyd's expiry state reader (tools/ukeyd/expiry.cpp,
// ExpiryWatch::open reads <state_dir>/ukeyd/expiry.json), then check() for
// the certificate fingerprints the seeds name, so the state read is used.
#include "expiry.h"
#include "fuzz_dir.h"
#include "token/log.h"

#include <sys/stat.h>

#include <cstdint>

using ukey::daemon::ExpiryWatch;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    static const std::filesystem::path state = [] {
        ukey::log::configure({ukey::log::Level::error, true, false}); // "damaged" warnings are expected here
        auto s = ukey::fuzz::scratch_dir() / "state";
        mkdir(s.c_str(), 0700);
        mkdir((s / "ukeyd").c_str(), 0700);
        return s;
    }();
    ukey::fuzz::write_input(state / "ukeyd" / "expiry.json", data, size);
    ExpiryWatch w;
    w.open(state);
    const std::time_t now = 1800000000;
    const std::string fp = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    w.check(fp, now + 5 * 86400, now);
    w.check(fp, now - 86400, now);
    w.check("bb", now + 30 * 86400, now);
    return 0;
}
