// KeyPolicyObject: the Key's PIN policy object (key_policy.h) is ukey's.
// Applications do not find it, and cannot make, change, copy or destroy it.
// On every backend, counted by ukey or not: the object travels with the Key.
#include "token/key_policy.h"
#include "token/stack.h"
#include "token/lock.h"

#include <algorithm>
#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>

namespace ukey {

namespace {

class KeyPolicyObject final : public Layer {
    void install(Stack& s) override
    {
        take<&KeyPolicyObject::CreateObject>(s.CreateObject);
        take<&KeyPolicyObject::CopyObject>(s.CopyObject);
        take<&KeyPolicyObject::DestroyObject>(s.DestroyObject);
        take<&KeyPolicyObject::SetAttributeValue>(s.SetAttributeValue);
        take<&KeyPolicyObject::FindObjectsInit>(s.FindObjectsInit);
        take<&KeyPolicyObject::FindObjects>(s.FindObjects);
        take<&KeyPolicyObject::FindObjectsFinal>(s.FindObjectsFinal);
        take<&KeyPolicyObject::CloseSession>(s.CloseSession);
        take<&KeyPolicyObject::CloseAllSessions>(s.CloseAllSessions);
    }

    CK_RV CreateObject(const SessionRoute& r, CK_ATTRIBUTE_PTR t, CK_ULONG n, CK_OBJECT_HANDLE_PTR out)
    {
        if (names_key_policy(t, n))
            return CKR_ATTRIBUTE_VALUE_INVALID; // CKA_APPLICATION "ukey-policy" is ukey's own
        return below().CreateObject(r, t, n, out);
    }

    CK_RV CopyObject(const SessionRoute& r, CK_OBJECT_HANDLE h, CK_ATTRIBUTE_PTR t, CK_ULONG n,
                     CK_OBJECT_HANDLE_PTR out)
    {
        if (names_key_policy(t, n))
            return CKR_ATTRIBUTE_VALUE_INVALID;
        if (is_key_policy(*r.backend, r.handle, h))
            return CKR_ACTION_PROHIBITED; // a second policy object would make the Key untrusted
        return below().CopyObject(r, h, t, n, out);
    }

    CK_RV DestroyObject(const SessionRoute& r, CK_OBJECT_HANDLE h)
    {
        if (is_key_policy(*r.backend, r.handle, h))
            return CKR_ACTION_PROHIBITED;
        return below().DestroyObject(r, h);
    }

    CK_RV SetAttributeValue(const SessionRoute& r, CK_OBJECT_HANDLE h, CK_ATTRIBUTE_PTR t, CK_ULONG n)
    {
        if (is_key_policy(*r.backend, r.handle, h))
            return CKR_ACTION_PROHIBITED;
        if (names_key_policy(t, n))
            return CKR_ATTRIBUTE_VALUE_INVALID;
        return below().SetAttributeValue(r, h, t, n);
    }

    // Searches for certificates and keys (the usual ones) need no check; the
    // sessions whose running search may meet the object are remembered.
    CK_RV FindObjectsInit(const SessionRoute& r, CK_ATTRIBUTE_PTR t, CK_ULONG n)
    {
        CK_RV rv = below().FindObjectsInit(r, t, n);
        if (rv == CKR_OK)
            hide(r, may_find_key_policy(t, n));
        return rv;
    }

    CK_RV FindObjects(const SessionRoute& r, CK_OBJECT_HANDLE_PTR out, CK_ULONG max, CK_ULONG_PTR count)
    {
        if (!hiding(r))
            return below().FindObjects(r, out, max, count);
        CK_ULONG filled = 0;
        for (;;) {
            CK_ULONG got = 0;
            const CK_ULONG asked = max - filled;
            CK_RV rv = below().FindObjects(r, out + filled, asked, &got);
            if (rv != CKR_OK)
                return rv;
            got = std::min(got, asked); // never trust a count past the array
            CK_OBJECT_HANDLE* batch = out + filled;
            CK_ULONG kept = 0;
            for (CK_ULONG i = 0; i < got; ++i)
                if (!is_key_policy(*r.backend, r.handle, batch[i]))
                    batch[kept++] = batch[i];
            filled += kept;
            // Only a skipped policy object leaves room the backend might fill.
            if (kept == got || got == 0 || filled == max || got < asked)
                break;
        }
        *count = filled;
        return CKR_OK;
    }

    CK_RV FindObjectsFinal(const SessionRoute& r)
    {
        hide(r, false);
        return below().FindObjectsFinal(r);
    }

    CK_RV CloseSession(const SessionRoute& r)
    {
        hide(r, false);
        return below().CloseSession(r);
    }

    CK_RV CloseAllSessions(const SlotEntry& e)
    {
        if (any_.load(std::memory_order_relaxed)) {
            std::unique_lock<RwLock> g(lock_);
            std::erase_if(hiding_, [&](const auto& kv) { return kv.second == e.backend_slot; });
            any_ = !hiding_.empty();
        }
        return below().CloseAllSessions(e);
    }

    void hide(const SessionRoute& r, bool on)
    {
        if (!on && !any_.load(std::memory_order_relaxed))
            return;
        std::unique_lock<RwLock> g(lock_);
        if (on)
            hiding_[r.handle] = r.backend_slot;
        else
            hiding_.erase(r.handle);
        any_ = !hiding_.empty();
    }

    bool hiding(const SessionRoute& r) const
    {
        if (!any_.load(std::memory_order_relaxed))
            return false;
        std::shared_lock<RwLock> g(lock_);
        return hiding_.count(r.handle) > 0;
    }

public:
    explicit KeyPolicyObject(const MutexCallbacks* cb) : lock_(cb) {}

private:
    mutable RwLock lock_;
    std::map<CK_SESSION_HANDLE, CK_SLOT_ID> hiding_; // backend session -> its backend slot
    std::atomic<bool> any_{false};
};

} // namespace

std::unique_ptr<Layer> make_key_policy_object(const LayerContext& ctx)
{
    return std::make_unique<KeyPolicyObject>(ctx.callbacks);
}

} // namespace ukey
