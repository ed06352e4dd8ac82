// Fuzz target: the renewal journal reader. load_journal()
// (client/journal.cpp) reads <state_dir>/renewal/<id>.json; its caller,
// `ukey renew` (tools/ukey/cmd_renew.cpp, resume()), parses it as JSON and
// checks "step" before anything touches a Key. That part is what runs here,
// the same calls in the same order; the rest (Run::roll_forward/roll_back)
// needs a Key session and is not reachable without a seam (README.md).
#include "fuzz_dir.h"
#include "client/journal.h"

#include <nlohmann/json.hpp>

#include <cstdint>

using nlohmann::json;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    static const std::filesystem::path path = [] {
        auto dir = ukey::client::journal_dir(ukey::fuzz::scratch_dir());
        std::filesystem::create_directories(dir);
        return ukey::client::journal_path(ukey::fuzz::scratch_dir(), "softhsm2/SoftHSM project/SoftHSM v2/0123");
    }();
    ukey::fuzz::write_input(path, data, size);
    auto text = ukey::client::load_journal(path);
    if (!text || !*text)
        std::abort(); // the file is there and ours: it must read
    if (**text != std::string(reinterpret_cast<const char*>(data), size))
        std::abort();
    json j = json::parse(**text, nullptr, false);
    if (!j.is_object() || !j.contains("step"))
        return 0;
    try {
        // resume(): a damaged journal must end in an error, never a crash
        // (ukey's main() turns a json exception into a failure).
        (void)j.value("step", "");
        (void)j.value("old_summary", json(nullptr));
        (void)j.value("ca_url", "");
        (void)j.value("ca_name", json(nullptr));
        (void)j.value("steps", json::array());
    } catch (const json::exception&) {
    }
    return 0;
}
