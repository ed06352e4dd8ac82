// A reader/writer lock that honours CK_C_INITIALIZE_ARGS: OS locking, or the
// application's own mutex callbacks when it asked for those instead.
#pragma once

#include <ukey/pkcs11.h>

#include <shared_mutex>

namespace ukey {

struct MutexCallbacks {
    CK_CREATEMUTEX create = nullptr;
    CK_DESTROYMUTEX destroy = nullptr;
    CK_LOCKMUTEX lock = nullptr;
    CK_UNLOCKMUTEX unlock = nullptr;
};

class RwLock {
public:
    // cb == nullptr: OS locking. Otherwise every lock goes through the
    // application's callbacks (exclusive only: they offer no shared mode).
    explicit RwLock(const MutexCallbacks* cb = nullptr);
    ~RwLock();
    RwLock(const RwLock&) = delete;
    RwLock& operator=(const RwLock&) = delete;

    void lock();
    void unlock();
    void lock_shared()
    {
        if (cb_)
            lock();
        else
            os_.lock_shared();
    }
    void unlock_shared()
    {
        if (cb_)
            unlock();
        else
            os_.unlock_shared();
    }

private:
    std::shared_mutex os_;
    const MutexCallbacks* cb_;
    CK_VOID_PTR app_ = nullptr;
};

} // namespace ukey
