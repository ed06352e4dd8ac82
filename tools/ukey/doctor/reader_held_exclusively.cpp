// P11: another program holds the card in a reader for itself alone
// (SCardConnect with SCARD_SHARE_EXCLUSIVE): every other program, ukey's
// backends included, gets SCARD_E_SHARING_VIOLATION until it lets go. Seen
// in pcscd's reader state, without connecting to the card.
#include "doctor.h"

#include "token/escape.h"

namespace ukey::cli::doctor {

UKEY_DOCTOR_CHECK(reader_held_exclusively, "P11.reader-held-exclusively", "P11",
                  "another program holds the card in a reader for itself alone",
                  "a vendor's card tool or another middleware opened the card exclusively and has not let go",
                  "close that program (or stop its service); if it cannot be found, unplug the Key and plug it in "
                  "again")
{
    for (const auto& r : f.pcsc.readers) {
        if (!r.card || !r.exclusive)
            continue;
        out.push_back(finding(reader_held_exclusively, Severity::problem, nullptr,
                              "another program holds the card in the reader '" + escape::printable(r.name) +
                                  "' for itself alone (error 8010000B, SCARD_E_SHARING_VIOLATION, for everyone "
                                  "else), so ukey and every other program are shut out of it",
                              "close the program that uses the card (a vendor's card tool or another middleware), "
                              "or unplug the Key and plug it in again"));
    }
}

} // namespace ukey::cli::doctor
