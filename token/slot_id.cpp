#include "token/slot_id.h"

#include "token/key_id.h"

namespace ukey {

std::string trim_field(const CK_UTF8CHAR* field, std::size_t size)
{
    std::size_t n = size;
    while (n > 0 && (field[n - 1] == ' ' || field[n - 1] == '\0'))
        --n;
    return std::string(reinterpret_cast<const char*>(field), n);
}

std::string token_identity(const std::string& backend, const CK_TOKEN_INFO& t)
{
    return key_id(backend, t).identity();
}

std::string empty_slot_identity(const std::string& backend, const CK_SLOT_INFO& s, CK_SLOT_ID backend_slot)
{
    std::string id = "slot";
    for (const std::string& part : {backend, trim_field(s.manufacturerID), trim_field(s.slotDescription),
                                    std::to_string(backend_slot)}) {
        id += '\0';
        id += part;
    }
    return id;
}

CK_SLOT_ID slot_id_for(const std::string& identity)
{
    std::uint64_t h = 0xcbf29ce484222325ULL;
    for (unsigned char c : identity) {
        h ^= c;
        h *= 0x100000001b3ULL;
    }
    // FNV's low bits mix poorly for inputs that differ at the end (serials);
    // the MurmurHash3 finaliser spreads every input bit over the result.
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    CK_SLOT_ID id = static_cast<CK_SLOT_ID>(h & 0x7fffffffULL);
    return id == 0 ? 1 : id;
}

} // namespace ukey
