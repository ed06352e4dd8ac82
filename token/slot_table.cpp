#include "token/slot_table.h"

#include "token/log.h"
#include "token/slot_id.h"

#include <mutex>
#include <shared_mutex>

namespace ukey {

CK_RV read_token_info(const Backend& b, CK_SLOT_ID backend_slot, CK_TOKEN_INFO& info, const std::string* expect)
{
    CK_RV rv = b.get_token_info(backend_slot, &info);
    if (rv != CKR_OK)
        return rv;
    std::string last = token_identity(b.name(), info);
    if (expect && last == *expect)
        return CKR_OK;
    for (int i = 0; i < 3; ++i) {
        CK_TOKEN_INFO again{};
        rv = b.get_token_info(backend_slot, &again);
        if (rv != CKR_OK)
            return rv;
        std::string now = token_identity(b.name(), again);
        info = again;
        if (now == last || (expect && now == *expect))
            return CKR_OK;
        last = now;
    }
    return CKR_DEVICE_ERROR; // the token never said the same twice
}

void SlotTable::scan(Backend& b, std::vector<Seen>& out)
{
    // Two-call form; the list may grow between the calls (a reader plugged
    // in), so retry a few times on CKR_BUFFER_TOO_SMALL.
    std::vector<CK_SLOT_ID> ids;
    CK_RV rv = CKR_OK;
    for (int attempt = 0; attempt < 4; ++attempt) {
        CK_ULONG n = 0;
        rv = b.call(&CK_FUNCTION_LIST::C_GetSlotList, CK_BBOOL(CK_FALSE), static_cast<CK_SLOT_ID_PTR>(nullptr), &n);
        if (rv != CKR_OK)
            break;
        ids.resize(n);
        rv = b.call(&CK_FUNCTION_LIST::C_GetSlotList, CK_BBOOL(CK_FALSE), ids.data(), &n);
        if (rv == CKR_BUFFER_TOO_SMALL)
            continue;
        ids.resize(n);
        break;
    }
    if (rv != CKR_OK) {
        log::warning("backend '" + b.name() + "': C_GetSlotList failed (" + std::to_string(rv) +
                     "); its Keys are not listed");
        return;
    }
    for (CK_SLOT_ID s : ids) {
        Seen seen{&b, s, {}, false, {}, {}};
        if (b.call(&CK_FUNCTION_LIST::C_GetSlotInfo, s, &seen.info) != CKR_OK)
            continue;
        CK_TOKEN_INFO t{};
        // An uninitialised token has no identity worth naming: it goes by
        // its slot until C_InitToken gives it a serial.
        if ((seen.info.flags & CKF_TOKEN_PRESENT) && read_token_info(b, s, t) == CKR_OK &&
            (t.flags & CKF_TOKEN_INITIALIZED)) {
            seen.key = key_id(b.name(), t);
            seen.identity = seen.key.identity();
            seen.names_key = true;
        } else {
            seen.identity = empty_slot_identity(b.name(), seen.info, s);
        }
        out.push_back(std::move(seen));
    }
}

void SlotTable::refresh(const std::vector<std::unique_ptr<Backend>>& backends)
{
    std::unique_lock<RwLock> serial(refresh_lock_);
    std::vector<Seen> seen;
    for (const auto& b : backends)
        scan(*b, seen);

    std::unique_lock<RwLock> g(lock_);
    for (auto& [id, e] : entries_)
        e.present = false;
    order_.clear();
    for (Seen& s : seen) {
        // Probe past an ID already held by another identity (a 31-bit hash
        // collision, or two Keys without serials).
        CK_SLOT_ID id = slot_id_for(s.identity);
        for (;;) {
            auto it = entries_.find(id);
            if (it == entries_.end() || (it->second.identity == s.identity && !it->second.present))
                break;
            id = (id % 0x7fffffffUL) + 1;
        }
        SlotEntry& e = entries_[id];
        e.backend = s.backend;
        e.backend_slot = s.backend_slot;
        e.identity = std::move(s.identity);
        e.names_key = s.names_key;
        e.key = std::move(s.key);
        e.present = true;
        e.info = s.info;
        order_.push_back(id);
    }
}

std::vector<CK_SLOT_ID> SlotTable::current(bool token_present) const
{
    std::shared_lock<RwLock> g(lock_);
    std::vector<CK_SLOT_ID> out;
    for (CK_SLOT_ID id : order_) {
        const SlotEntry& e = entries_.at(id);
        if (!token_present || (e.info.flags & CKF_TOKEN_PRESENT))
            out.push_back(id);
    }
    return out;
}

std::optional<SlotEntry> SlotTable::find(CK_SLOT_ID id) const
{
    std::shared_lock<RwLock> g(lock_);
    auto it = entries_.find(id);
    if (it == entries_.end())
        return std::nullopt;
    return it->second;
}

void SlotTable::mark_absent(CK_SLOT_ID id)
{
    std::unique_lock<RwLock> g(lock_);
    auto it = entries_.find(id);
    if (it != entries_.end() && it->second.names_key)
        it->second.present = false;
}

std::map<CK_SLOT_ID, bool> SlotTable::presence() const
{
    std::shared_lock<RwLock> g(lock_);
    std::map<CK_SLOT_ID, bool> out;
    for (const auto& [id, e] : entries_)
        out[id] = e.present && (!e.names_key || (e.info.flags & CKF_TOKEN_PRESENT));
    return out;
}

} // namespace ukey
