// Stable slot IDs. A slot ID names a Key (backend + token manufacturer, model
// and serial), not a position in a list, so it stays the same across
// C_Finalize/C_Initialize, across processes and when other Keys come and go.
// An empty reader slot is named by its backend and slot description instead.
// See docs/architecture.md, "Slot IDs".
#pragma once

#include <ukey/pkcs11.h>

#include <string>

namespace ukey {

// Blank-padded PKCS#11 text field → string without the trailing blanks.
std::string trim_field(const CK_UTF8CHAR* field, std::size_t size);

template <std::size_t N>
std::string trim_field(const CK_UTF8CHAR (&field)[N])
{
    return trim_field(field, N);
}

std::string token_identity(const std::string& backend, const CK_TOKEN_INFO& t);
std::string empty_slot_identity(const std::string& backend, const CK_SLOT_INFO& s, CK_SLOT_ID backend_slot);

// A 31-bit non-zero ID from an identity (FNV-1a 64 + MurmurHash3 finaliser); 31 bits because
// some applications keep slot IDs in a signed 32-bit int.
CK_SLOT_ID slot_id_for(const std::string& identity);

} // namespace ukey
