// The application's session and object handles, and how they map to a
// backend's. Two backends may hand out the same numbers; the application
// never sees a backend's numbers directly.
#pragma once

#include "lock.h"

#include <array>
#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <unordered_map>
#include <vector>

namespace ukey {

class Backend;

// Object handles carry their backend's index in the low 4 bits:
// app = backend_handle << 4 | index. The mapping needs no table, no lock and
// no memory, and a handle can never be read against the wrong backend.
// Backend handles too large to shift (none seen in practice, but the spec
// allows any CK_ULONG) go through a small table, marked by the top bit.
class ObjectHandles {
public:
    explicit ObjectHandles(const MutexCallbacks* cb) : lock_(cb) {}

    CK_OBJECT_HANDLE to_app(unsigned backend, CK_OBJECT_HANDLE h);
    // The backend handle, if `h` belongs to `backend`.
    std::optional<CK_OBJECT_HANDLE> to_backend(unsigned backend, CK_OBJECT_HANDLE h) const;
    // Translates a backend handle array to application handles in place.
    void to_app(unsigned backend, CK_OBJECT_HANDLE* hs, CK_ULONG n)
    {
        for (CK_ULONG i = 0; i < n; ++i)
            hs[i] = to_app(backend, hs[i]);
    }

    static constexpr unsigned index_bits = 4;

private:
    static constexpr CK_OBJECT_HANDLE big = CK_OBJECT_HANDLE(1) << (sizeof(CK_OBJECT_HANDLE) * 8 - 1);
    static constexpr CK_OBJECT_HANDLE index_mask = (CK_OBJECT_HANDLE(1) << index_bits) - 1;

    mutable RwLock lock_;
    std::unordered_map<CK_OBJECT_HANDLE, CK_OBJECT_HANDLE> big_to_backend_;
    std::unordered_map<CK_OBJECT_HANDLE, CK_OBJECT_HANDLE> backend_to_big_[16];
    CK_OBJECT_HANDLE next_big_ = 1;
};

// What the application's session handle stands for.
struct SessionRoute {
    Backend* backend = nullptr;
    CK_SESSION_HANDLE handle = CK_INVALID_HANDLE; // the backend's session handle
    CK_SLOT_ID slot = 0;                          // the application's slot ID
    CK_SLOT_ID backend_slot = 0;
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
    bool erase(CK_SESSION_HANDLE h);
    // Removes and returns every session on one backend slot.
    std::vector<SessionRoute> erase_slot(const Backend* b, CK_SLOT_ID backend_slot);
    std::vector<SessionRoute> erase_all();
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
