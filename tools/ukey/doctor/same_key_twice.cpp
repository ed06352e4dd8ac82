// P11: one Key (the same manufacturer and serial) reached through two of
// ukey's backends, e.g. the vendor's driver and OpenSC both reading the card.
#include "doctor.h"

#include "token/escape.h"

namespace ukey::cli::doctor {

UKEY_DOCTOR_CHECK(same_key_twice, "P11.same-key-twice", "P11", "the same Key is seen through two backends",
                  "two drivers in ukey.conf both read the Key (the vendor's and a generic one such as OpenSC)",
                  "keep one of them in ukey.conf")
{
    for (std::size_t i = 0; i < f.keys.size(); ++i) {
        const auto& a = f.keys[i].info;
        if (a.serial().empty())
            continue;
        for (std::size_t j = i + 1; j < f.keys.size(); ++j) {
            const auto& b = f.keys[j].info;
            if (b.serial() != a.serial() || b.manufacturer() != a.manufacturer() ||
                b.backend_name() == a.backend_name())
                continue;
            const std::string ba = escape::printable(a.backend_name()), bb = escape::printable(b.backend_name());
            out.push_back(finding(same_key_twice, Severity::warning, &f.keys[i],
                                  "this Key is seen twice, through the backends '" + ba + "' (slot " +
                                      std::to_string(a.slot) + ") and '" + bb + "' (slot " + std::to_string(b.slot) +
                                      "): applications offer its certificates twice, and the two drivers may "
                                      "disturb each other",
                                  "keep only one of '" + ba + "' and '" + bb + "' in " +
                                      escape::printable(f.config_path)));
        }
    }
}

} // namespace ukey::cli::doctor
