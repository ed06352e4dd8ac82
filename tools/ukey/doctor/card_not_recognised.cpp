// P1: a card is in a reader, but no backend shows a Key for it (the
// "unrecognised device" of the FAQs). Named by its ATR, and by pcsc-tools'
// list of known ATRs when that is installed.
#include "doctor.h"

#include "token/escape.h"

#include <fstream>

namespace ukey::cli::doctor {

namespace {

constexpr const char* atr_list = "/usr/share/pcsc/smartcard_list.txt";

// The first description line of `atr` in pcsc-tools' list (an ATR line,
// then tab-indented descriptions); empty when not listed.
std::string known_as(const std::string& atr)
{
    std::ifstream in(atr_list);
    std::string line;
    for (int n = 0; in && n < 200000 && std::getline(in, line); ++n) {
        if (line != atr)
            continue;
        if (std::getline(in, line) && !line.empty() && line[0] == '\t')
            return line.substr(1, 200);
        return {};
    }
    return {};
}

} // namespace

UKEY_DOCTOR_CHECK(card_not_recognised, "P1.card-not-recognised", "P1",
                  "a card is in a reader but no backend recognises it",
                  "the Key's driver (its issuer's PKCS#11 module) is not installed or not named in ukey.conf",
                  "install the module the Key's issuer gives and add it as a [[backend]] (ukey.conf(5))")
{
    if (!f.config || !f.module_error.empty())
        return;
    for (const auto& r : f.pcsc.readers) {
        // Held by another program: no backend could look at it
        // (P11.reader-held-exclusively says so).
        if (!r.card || r.exclusive)
            continue;
        bool shown = false;
        for (const auto& k : f.keys)
            shown = shown || k.info.reader().find(r.name) != std::string::npos ||
                    r.name.find(k.info.reader()) != std::string::npos;
        if (shown)
            continue;
        const std::string what = known_as(r.atr);
        std::ifstream list(atr_list);
        out.push_back(finding(
            card_not_recognised, Severity::problem, nullptr,
            "a card is in the reader '" + escape::printable(r.name) + "' (ATR " + r.atr +
                (what.empty() ? std::string() : ", known as \"" + escape::printable(what) + "\"") +
                ") but no backend recognises it, so no application can use it",
            "install the PKCS#11 module the card's issuer gives (or OpenSC, `apt install opensc`, for common cards) "
            "and add it as a [[backend]] in ukey.conf" +
                std::string(list ? "" : "; `apt install pcsc-tools` lets ukey doctor name the card from its ATR")));
    }
}

} // namespace ukey::cli::doctor
