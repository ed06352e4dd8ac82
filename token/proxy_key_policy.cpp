// The Key's policy (key_policy.h) as the Proxy sees it: read from the Key,
// cached per Key for C_GetTokenInfo, and laid over the local counts.
#include "token/proxy.h"

#include "token/log.h"

#include <mutex>
#include <shared_mutex>

namespace ukey {

Result<std::optional<KeyPolicy>> Proxy::key_policy(const Backend& b, CK_SLOT_ID backend_slot, const KeyId& key,
                                                   bool fresh) const
{
    if (!fresh) {
        std::shared_lock<RwLock> g(policies_lock_);
        if (auto it = policies_.find(key.identity()); it != policies_.end())
            return it->second;
    }
    auto p = read_key_policy(b, backend_slot);
    if (p)
        remember_policy(key, *p);
    else
        return Error{p.error().rv, "Key " + key_name(key) + ": " + p.error().message};
    return p;
}

void Proxy::warn_once(const std::string& message) const
{
    {
        std::unique_lock<RwLock> g(policies_lock_);
        if (warned_.size() >= 64 || !warned_.insert(message).second)
            return;
    }
    log::warning(message);
}

void Proxy::remember_policy(const KeyId& key, const std::optional<KeyPolicy>& p) const
{
    std::unique_lock<RwLock> g(policies_lock_);
    policies_[key.identity()] = p;
}

void Proxy::forget_policy(const KeyId& key) const
{
    std::unique_lock<RwLock> g(policies_lock_);
    policies_.erase(key.identity());
}

Result<PinCounts> Proxy::pin_counts(const Backend& b, CK_SLOT_ID backend_slot, const KeyId& key, bool fresh) const
{
    auto c = pins_->read(key);
    if (!c)
        return c;
    auto p = key_policy(b, backend_slot, key, fresh);
    if (!p) {
        if (p.error().rv == CKR_PIN_LOCKED)
            return p.error();
        return c; // the Key cannot be asked now: shown by the local record (logins ask again)
    }
    PinCounts out = *c;
    if (auto ok = apply_key_policy(out, *p, key_name(key)); !ok)
        return ok.error();
    return out;
}

} // namespace ukey
