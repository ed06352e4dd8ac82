// Fuzz target: the renewal journal, as `ukey renew` (tools/ukey/cmd_renew.cpp,
// resume()) and `ukey doctor` read it before anything touches a Key:
// load_journal() reads <state_dir>/renewal/<id>.json, parse_journal()
// (client/journal.cpp) checks every field that the renewal steps later use,
// and resume_action() decides between completing and rolling back. The rest
// (roll_forward/roll_back) needs a Key session.
//
// Oracles: a file that is there and ours always reads, byte for byte; a
// journal that parses writes back (journal_text) to a text that parses to
// the same journal, so what ukey saves after a step it can read again.
#include "fuzz_dir.h"
#include "client/journal.h"
#include "client/renewal.h"

#include <cstdint>
#include <cstdlib>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    using namespace ukey::client;
    static const std::filesystem::path path = [] {
        auto dir = journal_dir(ukey::fuzz::scratch_dir());
        std::filesystem::create_directories(dir);
        return journal_path(ukey::fuzz::scratch_dir(), "softhsm2/SoftHSM project/SoftHSM v2/0123");
    }();
    ukey::fuzz::write_input(path, data, size);
    auto text = load_journal(path);
    if (!text || !*text)
        std::abort(); // the file is there and ours: it must read
    if (**text != std::string(reinterpret_cast<const char*>(data), size))
        std::abort();
    auto j = parse_journal(**text);
    if (!j) {
        if (j.error().message.empty())
            std::abort(); // a refusal always says which field
        return 0;
    }
    (void)resume_action(*j);
    (void)step_name(j->step());
    const std::string saved = journal_text(*j);
    auto again = parse_journal(saved);
    if (!again || journal_text(*again) != saved)
        std::abort();
    return 0;
}
