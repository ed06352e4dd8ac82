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
        refresh_slots();
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
        refresh_slots();
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
            // Another token sits where this Key was (or the backend gave one
            // odd answer: the next refresh, which reads twice, decides
            // whether the Key's sessions end).
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
    // Served over p11-kit's RPC, whose server answers one call at a time
    // per connection: a blocking wait would hold up every other call of
    // the application. It polls instead, as for any module without the
    // blocking form (docs/service-mode.md, "Events").
    if (serving_ && !(flags & CKF_DONT_BLOCK))
        return CKR_FUNCTION_NOT_SUPPORTED;

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
        refresh_slots();
        return slots_.presence();
    };
    src.reload = [this](const std::string& backend, bool first) { return reload_backend(backend, first); };
    src.gone = [this](CK_SLOT_ID id) { key_gone(id); };
    src.back = [this](CK_SLOT_ID id) { slots_.forget_gone(id); };
    src.names_key = [this](CK_SLOT_ID id) {
        auto e = slots_.find(id);
        return e && e->names_key;
    };
    return events_.next(!(flags & CKF_DONT_BLOCK), src, *pSlot);
}

SlotSource::Reload Proxy::reload_backend(const std::string& name, bool first)
{
    using R = SlotSource::Reload;
    Backend* b = nullptr;
    for (auto& x : backends_)
        if (x->name() == name)
            b = x.get();
    if (!b || !b->initialized_by_us())
        return R::never; // unknown, or initialised by someone else: not ours to restart
    // Its sessions would be gone (and logins with them): the new Key is then
    // shown once they are closed (SlotEvents keeps the daemon's word and
    // tries again at each scan), or when the application starts again.
    auto busy = [&] {
        bool any = false;
        sessions_.for_each([&](CK_SESSION_HANDLE, const SessionRoute& r) { any = any || r.backend == b; });
        return any;
    };
    // Said once per word of the daemon, not at each later try.
    auto say = [first](const std::string& what) { first ? log::info(what) : log::debug(what); };
    if (busy()) {
        say("backend '" + name + "' shows the Keys other processes made or removed only once initialised again; not now, sessions are open on it");
        return R::later;
    }
    const CallsPaused paused(std::chrono::seconds(2));
    if (!paused.held()) {
        // Not tried again: each try would hold every new call up to 2 s
        // again, behind the same long call.
        log::info("backend '" + name + "' not initialised again: calls into the backends did not end within 2 s");
        return R::never;
    }
    // Asked again now that no call runs: a session opened since the first
    // look would otherwise be lost without the application being told.
    if (busy()) {
        say("backend '" + name + "' not initialised again now: a session was opened on it meanwhile");
        return R::later;
    }
    b->finalize();
    slots_.forget_gone(b);
    if (auto r = b->initialize(init_flags_, false); !r) {
        log::error(r.error().message + " (initialising it again to see a new Key)");
        return R::never;
    }
    log::info("backend '" + name + "' initialised again: it shows the Keys other processes made or removed since");
    return R::done;
}

void Proxy::key_gone(CK_SLOT_ID id)
{
    if (const auto e = slots_.mark_gone(id))
        end_sessions(*e);
}

void Proxy::refresh_slots()
{
    for (const SlotEntry& e : slots_.refresh(backends_))
        end_sessions(e);
}

void Proxy::end_sessions(const SlotEntry& e)
{
    // Removing a token closes every session with it (v2.40 §5.1, at
    // CKR_SESSION_HANDLE_INVALID), as a pulled card does; a backend that
    // does not notice (SoftHSM2 and a token another process deleted) would
    // otherwise keep them working. The sessions are the ones opened on this
    // Key (its identity, in its backend slot: a twin Key told apart by
    // probing keeps its own), not whatever its backend slot holds now. They
    // leave the table first, then go down the stack, so that the layers
    // forget them (the PIN policy its forced-change login) and the backend
    // is left alone (layer_backend.cpp).
    std::vector<std::unique_ptr<NotifyRelay>> relays;
    auto ended = sessions_.erase_if(
        [&](const SessionRoute& r) {
            return r.backend == e.backend && r.backend_slot == e.backend_slot && r.key &&
                   r.key->identity() == e.identity;
        },
        &relays);
    if (!relays.empty()) {
        // The backend may still call them (its sessions stay open): kept
        // until this Proxy ends.
        std::lock_guard<std::mutex> g(orphan_relays_lock_);
        for (auto& r : relays)
            orphan_relays_.push_back(std::move(r));
    }
    for (SessionRoute& r : ended) {
        r.key_out = true;
        stack(r.backend).CloseSession(r);
    }
    if (!ended.empty())
        log::info("a Key of backend '" + e.backend->name() + "' went away: " + std::to_string(ended.size()) +
                  " session(s) on it closed");
}

} // namespace ukey
