#include "token/handles.h"

#include <mutex>
#include <shared_mutex>

namespace ukey {

CK_OBJECT_HANDLE ObjectHandles::to_app(unsigned tag, CK_OBJECT_HANDLE h)
{
    if (h == CK_INVALID_HANDLE)
        return CK_INVALID_HANDLE;
    if (h < (big >> tag_bits))
        return (h << tag_bits) | tag;
    std::unique_lock<RwLock> g(lock_);
    auto [it, fresh] = backend_to_big_.try_emplace({tag, h}, 0);
    if (fresh) {
        it->second = big | (next_big_++ << tag_bits) | tag;
        big_to_backend_[it->second] = h;
    }
    return it->second;
}

std::optional<CK_OBJECT_HANDLE> ObjectHandles::to_backend(unsigned tag, CK_OBJECT_HANDLE h) const
{
    if (h == CK_INVALID_HANDLE || (h & tag_mask) != tag)
        return std::nullopt;
    if (!(h & big))
        return h >> tag_bits;
    std::shared_lock<RwLock> g(lock_);
    auto it = big_to_backend_.find(h);
    if (it == big_to_backend_.end())
        return std::nullopt;
    return it->second;
}

SessionTable::SessionTable(const MutexCallbacks* cb)
{
    for (auto& s : shards_)
        s = std::make_unique<Shard>(cb);
}

void SessionTable::insert(CK_SESSION_HANDLE h, const SessionRoute& r, std::unique_ptr<NotifyRelay> relay)
{
    Shard& s = shard(h);
    std::unique_lock<RwLock> g(s.lock);
    s.map[h] = Entry{r, std::move(relay)};
}

bool SessionTable::find(CK_SESSION_HANDLE h, SessionRoute& out) const
{
    const Shard& s = shard(h);
    std::shared_lock<RwLock> g(s.lock);
    auto it = s.map.find(h);
    if (it == s.map.end())
        return false;
    out = it->second.route;
    return true;
}

void SessionTable::set_hide_policy(CK_SESSION_HANDLE h, bool hide)
{
    Shard& s = shard(h);
    std::unique_lock<RwLock> g(s.lock);
    if (auto it = s.map.find(h); it != s.map.end())
        it->second.route.hide_policy = hide;
}

bool SessionTable::erase(CK_SESSION_HANDLE h)
{
    Shard& s = shard(h);
    std::unique_lock<RwLock> g(s.lock);
    return s.map.erase(h) > 0;
}

std::vector<SessionRoute> SessionTable::erase_slot(const Backend* b, CK_SLOT_ID backend_slot)
{
    return erase_if([&](const SessionRoute& r) { return r.backend == b && r.backend_slot == backend_slot; });
}

std::vector<SessionRoute> SessionTable::erase_if(const std::function<bool(const SessionRoute&)>& pick,
                                               std::vector<std::unique_ptr<NotifyRelay>>* relays)
{
    std::vector<SessionRoute> out;
    for (auto& s : shards_) {
        std::unique_lock<RwLock> g(s->lock);
        for (auto it = s->map.begin(); it != s->map.end();) {
            if (pick(it->second.route)) {
                out.push_back(it->second.route);
                if (relays && it->second.relay)
                    relays->push_back(std::move(it->second.relay));
                it = s->map.erase(it);
            } else {
                ++it;
            }
        }
    }
    return out;
}

std::vector<SessionRoute> SessionTable::erase_all()
{
    std::vector<SessionRoute> out;
    for (auto& s : shards_) {
        std::unique_lock<RwLock> g(s->lock);
        for (auto& [h, e] : s->map)
            out.push_back(e.route);
        s->map.clear();
    }
    return out;
}

void SessionTable::for_each(const std::function<void(CK_SESSION_HANDLE, const SessionRoute&)>& fn) const
{
    for (const auto& s : shards_) {
        std::shared_lock<RwLock> g(s->lock);
        for (const auto& [h, e] : s->map)
            fn(h, e.route);
    }
}

} // namespace ukey
