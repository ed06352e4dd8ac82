// The application's session and object handles, and how they map to a
// backend's. Two backends may hand out the same numbers; the application
// never sees a backend's numbers directly.
#pragma once

#include "token/lock.h"

#include <array>
#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <unordered_map>
#include <vector>

namespace ukey {

class Backend;

// Object handles carry a 12-bit tag naming where they belong: the backend's
// index (low 4 bits) and a number for the backend slot (next 8 bits):
// app = backend_handle << 12 | tag. The mapping needs no lock and no memory,
// and a handle can never be read against another backend, nor against
// another token of the same backend (SoftHSM2's handles are global: without
// the slot, a session on one Key could reach another Key's objects).
// Backend handles too large to shift (none seen in practice, but the spec
// allows any CK_ULONG) go through a small table, marked by the top bit.
class ObjectHandles {
public:
    explicit ObjectHandles(const MutexCallbacks* cb) : lock_(cb) {}

    CK_OBJECT_HANDLE to_app(unsigned tag, CK_OBJECT_HANDLE h);
    // The backend handle, if `h` carries `tag`.
    std::optional<CK_OBJECT_HANDLE> to_backend(unsigned tag, CK_OBJECT_HANDLE h) const;
    // Translates a backend handle array to application handles in place.
    void to_app(unsigned tag, CK_OBJECT_HANDLE* hs, CK_ULONG n)
    {
        for (CK_ULONG i = 0; i < n; ++i)
            hs[i] = to_app(tag, hs[i]);
    }

    static constexpr unsigned backend_bits = 4;
    static constexpr unsigned slot_bits = 8;
    static constexpr unsigned tag_bits = backend_bits + slot_bits;
    static unsigned tag(unsigned backend, unsigned slot_number) { return slot_number << backend_bits | backend; }

private:
    static constexpr CK_OBJECT_HANDLE big = CK_OBJECT_HANDLE(1) << (sizeof(CK_OBJECT_HANDLE) * 8 - 1);
    static constexpr CK_OBJECT_HANDLE tag_mask = (CK_OBJECT_HANDLE(1) << tag_bits) - 1;

    mutable RwLock lock_;
    std::unordered_map<CK_OBJECT_HANDLE, CK_OBJECT_HANDLE> big_to_backend_;
    std::map<std::pair<unsigned, CK_OBJECT_HANDLE>, CK_OBJECT_HANDLE> backend_to_big_;
    CK_OBJECT_HANDLE next_big_ = 1;
};

struct KeyId;

// What the application's session handle stands for.
struct SessionRoute {
    Backend* backend = nullptr;
    CK_SESSION_HANDLE handle = CK_INVALID_HANDLE; // the backend's session handle
    CK_SLOT_ID slot = 0;                          // the application's slot ID
    CK_SLOT_ID backend_slot = 0;
    unsigned tag = 0;            // ObjectHandles tag of (backend, backend slot)
    const KeyId* key = nullptr;  // the Key, fixed when the session opened; nullptr if uninitialised
    bool hide_policy = false;    // the running search may meet the Key's policy object (key_policy.h)
    bool key_out = false;        // closed because its Key went away: nothing to close at the backend
};

// Calls from the application's Notify callback, translated, when it gave one.
struct NotifyRelay {
    CK_SESSION_HANDLE app_handle;
    CK_NOTIFY notify;
    CK_VOID_PTR application;
};

// Sharded so threads working on their own sessions do not contend on one
// lock on the signing path.
class SessionTable {
public:
    explicit SessionTable(const MutexCallbacks* cb);

    // A fresh application handle, never 0 and never reused in this table.
    CK_SESSION_HANDLE reserve() { return next_.fetch_add(1, std::memory_order_relaxed); }
    void insert(CK_SESSION_HANDLE h, const SessionRoute& r, std::unique_ptr<NotifyRelay> relay);
    bool find(CK_SESSION_HANDLE h, SessionRoute& out) const;
    // Whether C_FindObjects on this session must skip the policy object.
    void set_hide_policy(CK_SESSION_HANDLE h, bool hide);
    bool erase(CK_SESSION_HANDLE h);
    // Removes and returns every session on one backend slot.
    std::vector<SessionRoute> erase_slot(const Backend* b, CK_SLOT_ID backend_slot);
    std::vector<SessionRoute> erase_all();
    // Removes and returns every session for which `pick` holds; their
    // Notify relays go to `relays` when given (the backend may still call
    // them), else they are freed.
    std::vector<SessionRoute> erase_if(const std::function<bool(const SessionRoute&)>& pick,
                                       std::vector<std::unique_ptr<NotifyRelay>>* relays = nullptr);
    // Visits every session (under each shard's lock; keep `fn` short).
    void for_each(const std::function<void(CK_SESSION_HANDLE, const SessionRoute&)>& fn) const;

private:
    struct Entry {
        SessionRoute route;
        std::unique_ptr<NotifyRelay> relay;
    };
    struct alignas(64) Shard {
        explicit Shard(const MutexCallbacks* cb) : lock(cb) {}
        mutable RwLock lock;
        std::unordered_map<CK_SESSION_HANDLE, Entry> map;
    };
    static constexpr std::size_t shards = 16;
    Shard& shard(CK_SESSION_HANDLE h) { return *shards_[h % shards]; }
    const Shard& shard(CK_SESSION_HANDLE h) const { return *shards_[h % shards]; }

    std::array<std::unique_ptr<Shard>, shards> shards_;
    std::atomic<CK_SESSION_HANDLE> next_{1};
};

} // namespace ukey
