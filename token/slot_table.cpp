#include "token/slot_table.h"

#include "token/log.h"
#include "token/slot_id.h"

#include <algorithm>
#include <set>
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

bool SlotTable::scan(Backend& b, std::vector<Seen>& out, std::set<CK_SLOT_ID>& unsure)
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
        return false;
    }
    for (CK_SLOT_ID s : ids) {
        Seen seen{&b, s, {}, false, {}, {}};
        if (b.call(&CK_FUNCTION_LIST::C_GetSlotInfo, s, &seen.info) != CKR_OK) {
            unsure.insert(s);
            continue;
        }
        CK_TOKEN_INFO t{};
        // An uninitialised token has no identity worth naming: it goes by
        // its slot until C_InitToken gives it a serial.
        const CK_RV trv = (seen.info.flags & CKF_TOKEN_PRESENT) ? read_token_info(b, s, t) : CKR_TOKEN_NOT_PRESENT;
        if (trv != CKR_OK && trv != CKR_TOKEN_NOT_PRESENT && trv != CKR_TOKEN_NOT_RECOGNIZED &&
            trv != CKR_DEVICE_REMOVED)
            unsure.insert(s);
        if (trv == CKR_OK && (t.flags & CKF_TOKEN_INITIALIZED)) {
            seen.key = key_id(b.name(), t);
            seen.identity = seen.key.identity();
            seen.names_key = true;
        } else {
            seen.identity = empty_slot_identity(b.name(), seen.info, s);
        }
        out.push_back(std::move(seen));
    }
    return true;
}

std::vector<SlotEntry> SlotTable::refresh(const std::vector<std::unique_ptr<Backend>>& backends)
{
    std::unique_lock<RwLock> serial(refresh_lock_);
    std::vector<Seen> seen;
    // Slots whose answer was an error, not "no such Key": a Key listed
    // there before may still be in (not listed now all the same).
    std::set<std::pair<const Backend*, CK_SLOT_ID>> unsure;
    std::set<const Backend*> failed;
    for (const auto& b : backends) {
        std::set<CK_SLOT_ID> u;
        if (!scan(*b, seen, u))
            failed.insert(b.get());
        for (CK_SLOT_ID s : u)
            unsure.emplace(b.get(), s);
    }

    std::unique_lock<RwLock> g(lock_);
    std::map<CK_SLOT_ID, SlotEntry> was; // the Keys present before (or left out on an error)
    for (auto& [id, e] : entries_) {
        if ((e.present || e.out_unsure) && e.names_key)
            was.emplace(id, e);
        e.present = false;
    }
    order_.clear();
    // A Key held out by mark_gone that its backend no longer shows either:
    // the backend has caught up, and its list is the truth again.
    std::erase_if(gone_, [&](const auto& kv) {
        if (failed.count(kv.second))
            return false;
        return std::none_of(seen.begin(), seen.end(), [&](const Seen& s) { return s.identity == kv.first; });
    });
    for (Seen& s : seen) {
        if (gone_.count(s.identity))
            continue; // out, as the daemon said (mark_gone): its entry stays, not present
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
        e.out_unsure = false;
        e.info = s.info;
        order_.push_back(id);
        was.erase(id);
    }
    std::vector<SlotEntry> out;
    for (auto& [id, e] : was) {
        const bool maybe = failed.count(e.backend) || unsure.count({e.backend, e.backend_slot});
        entries_[id].out_unsure = maybe;
        if (!maybe && !gone_.count(e.identity))
            out.push_back(std::move(e));
    }
    return out;
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
    if (it == entries_.end() || !it->second.names_key || !it->second.present)
        return;
    it->second.present = false;
    it->second.out_unsure = true; // the next refresh says whether its sessions end
}

std::optional<SlotEntry> SlotTable::mark_gone(CK_SLOT_ID id)
{
    std::unique_lock<RwLock> g(lock_);
    auto it = entries_.find(id);
    if (it == entries_.end() || !it->second.names_key)
        return std::nullopt;
    SlotEntry before = it->second;
    if (!it->second.present)
        return before; // already out: nothing to hold out
    if (gone_.size() >= max_gone && !gone_.count(it->second.identity)) {
        log::warning("more than " + std::to_string(max_gone) +
                     " Keys reported out by ukeyd are still shown by their backends; this one stays listed");
        return before;
    }
    gone_.emplace(it->second.identity, it->second.backend);
    it->second.present = false;
    order_.erase(std::remove(order_.begin(), order_.end(), id), order_.end());
    return before;
}

void SlotTable::forget_gone(CK_SLOT_ID id)
{
    std::unique_lock<RwLock> g(lock_);
    if (auto it = entries_.find(id); it != entries_.end())
        gone_.erase(it->second.identity);
}

void SlotTable::forget_gone(const Backend* b)
{
    std::unique_lock<RwLock> g(lock_);
    std::erase_if(gone_, [b](const auto& kv) { return kv.second == b; });
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
