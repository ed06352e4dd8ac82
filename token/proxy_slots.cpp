// Slots and tokens: the aggregated slot list, token and mechanism info, events.
#include "token/proxy.h"

#include "token/slot_id.h"

#include <algorithm>
#include <mutex>

namespace ukey {

CK_RV Proxy::slot(CK_SLOT_ID id, bool need_token, SlotEntry& out)
{
    auto e = slots_.find(id);
    if (!e) {
        // The application may know an ID we have not listed yet (a Key
        // inserted since, named in a stored URI).
        slots_.refresh(backends_);
        e = slots_.find(id);
        if (!e)
            return CKR_SLOT_ID_INVALID;
    }
    if (need_token && e->names_key && !e->present)
        return CKR_TOKEN_NOT_PRESENT;
    out = std::move(*e);
    return CKR_OK;
}

CK_RV Proxy::GetSlotList(CK_BBOOL tokenPresent, CK_SLOT_ID_PTR pSlotList, CK_ULONG_PTR pulCount)
{
    if (!pulCount)
        return CKR_ARGUMENTS_BAD;
    // The usual two calls (count, then fill) must see one list: the NULL call
    // refreshes, the fill that follows reuses it. A fill with no count call
    // before it refreshes too.
    if (!pSlotList || !slot_list_cached_.exchange(false))
        slots_.refresh(backends_);
    std::vector<CK_SLOT_ID> ids = slots_.current(tokenPresent);
    if (!pSlotList) {
        slot_list_cached_ = true;
        *pulCount = ids.size();
        return CKR_OK;
    }
    if (*pulCount < ids.size()) {
        slot_list_cached_ = true;
        *pulCount = ids.size();
        return CKR_BUFFER_TOO_SMALL;
    }
    std::copy(ids.begin(), ids.end(), pSlotList);
    *pulCount = ids.size();
    return CKR_OK;
}

CK_RV Proxy::GetSlotInfo(CK_SLOT_ID slotID, CK_SLOT_INFO_PTR pInfo)
{
    if (!pInfo)
        return CKR_ARGUMENTS_BAD;
    return on_slot(slotID, false, [&](const SlotEntry& e) {
        // A Key that is out (or whose reader went away), or a slot the
        // backend no longer has (SoftHSM2's empty slot, once initialised or
        // after the backend was initialised again): its slot is there,
        // empty, so that a slot event about it can be acted on.
        CK_RV rv = e.names_key && !e.present ? CKR_SLOT_ID_INVALID : stack(e.backend).GetSlotInfo(e, pInfo);
        if (rv == CKR_SLOT_ID_INVALID && (e.names_key || !e.present)) {
            *pInfo = e.info;
            pInfo->flags &= ~CKF_TOKEN_PRESENT;
            rv = CKR_OK;
        }
        // A USB Key is removable, whatever a soft backend says ([[backend]]
        // removable): browsers offer a fixed token's certificates otherwise.
        if (rv == CKR_OK && e.backend->removable())
            pInfo->flags |= CKF_REMOVABLE_DEVICE;
        return rv;
    });
}

CK_RV Proxy::GetTokenInfo(CK_SLOT_ID slotID, CK_TOKEN_INFO_PTR pInfo)
{
    if (!pInfo)
        return CKR_ARGUMENTS_BAD;
    return on_slot(slotID, true, [&](const SlotEntry& e) {
        CK_RV rv = stack(e.backend).GetTokenInfo(e, pInfo);
        if (rv == CKR_SLOT_ID_INVALID)
            rv = CKR_TOKEN_NOT_PRESENT;
        if (rv == CKR_OK && e.names_key && token_identity(e.backend->name(), *pInfo) != e.identity) {
            // Another token sits where this Key was.
            slots_.mark_absent(slotID);
            return CKR_TOKEN_NOT_PRESENT;
        }
        return rv;
    });
}

CK_RV Proxy::UkeyGetSlotBackend(CK_SLOT_ID slotID, UKEY_SLOT_BACKEND* pInfo)
{
    if (!pInfo)
        return CKR_ARGUMENTS_BAD;
    return slot_forward(slotID, false, &Stack::UkeyGetSlotBackend, pInfo);
}

CK_RV Proxy::GetMechanismList(CK_SLOT_ID slotID, CK_MECHANISM_TYPE_PTR pMechanismList, CK_ULONG_PTR pulCount)
{
    if (!pulCount)
        return CKR_ARGUMENTS_BAD;
    return slot_forward(slotID, true, &Stack::GetMechanismList, pMechanismList, pulCount);
}

CK_RV Proxy::GetMechanismInfo(CK_SLOT_ID slotID, CK_MECHANISM_TYPE type, CK_MECHANISM_INFO_PTR pInfo)
{
    if (!pInfo)
        return CKR_ARGUMENTS_BAD;
    return slot_forward(slotID, true, &Stack::GetMechanismInfo, type, pInfo);
}

CK_RV Proxy::WaitForSlotEvent(CK_FLAGS flags, CK_SLOT_ID_PTR pSlot, CK_VOID_PTR pReserved)
{
    // Counted in before this Proxy is looked at, out as the very last step:
    // C_Finalize clears active_ and then waits for the count to drop, so
    // either it waits for us or we see that it has begun. (Sequentially
    // consistent on both sides, hence not active().)
    waiting_.fetch_add(1);
    struct Leave {
        ~Leave()
        {
            waiting_.fetch_sub(1);
            waiting_.notify_all();
        }
    } leave;
    if (active_.load() != this || fork_generation_ != current_fork_generation())
        return CKR_CRYPTOKI_NOT_INITIALIZED;
    if (!pSlot || pReserved || (flags & ~CK_FLAGS(CKF_DONT_BLOCK)))
        return CKR_ARGUMENTS_BAD;

    SlotSource src;
    src.rescan = [this] {
        // The backends' own events are drained so that a backend that
        // queues them does not keep old ones; what counts is the slot list.
        for (auto& b : backends_) {
            CK_SLOT_ID ignored;
            for (int i = 0; i < 64; ++i)
                if (b->call(&CK_FUNCTION_LIST::C_WaitForSlotEvent, CK_FLAGS(CKF_DONT_BLOCK), &ignored,
                            static_cast<CK_VOID_PTR>(nullptr)) != CKR_OK)
                    break;
        }
        slots_.refresh(backends_);
        return slots_.presence();
    };
    src.reload = [this](const std::string& backend) { return reload_backend(backend); };
    src.names_key = [this](CK_SLOT_ID id) {
        auto e = slots_.find(id);
        return e && e->names_key;
    };
    return events_.next(!(flags & CKF_DONT_BLOCK), src, *pSlot);
}

bool Proxy::reload_backend(const std::string& name)
{
    Backend* b = nullptr;
    for (auto& x : backends_)
        if (x->name() == name)
            b = x.get();
    if (!b || !b->initialized_by_us())
        return false; // unknown, or initialised by someone else: not ours to restart
    // Its sessions would be gone (and logins with them): the new Key is then
    // not shown in this process until the daemon speaks of it again after
    // they are closed, or the application starts again.
    bool busy = false;
    sessions_.for_each([&](CK_SESSION_HANDLE, const SessionRoute& r) { busy = busy || r.backend == b; });
    if (busy) {
        log::info("backend '" + name + "' shows a new Key only once initialised again; not now, sessions are open on it");
        return false;
    }
    const CallsPaused paused(std::chrono::seconds(2));
    if (!paused.held()) {
        log::info("backend '" + name + "' not initialised again now: calls into the backends did not end within 2 s");
        return false;
    }
    b->finalize();
    if (auto r = b->initialize(init_flags_, false); !r) {
        log::error(r.error().message + " (initialising it again to see a new Key)");
        return false;
    }
    log::info("backend '" + name + "' initialised again: it shows the Keys other processes made since");
    return true;
}

} // namespace ukey
