#include "token/lock.h"

#include <new>

namespace ukey {

RwLock::RwLock(const MutexCallbacks* cb) : cb_(cb)
{
    if (cb_ && cb_->create(&app_) != CKR_OK)
        throw std::bad_alloc(); // reported as CKR_HOST_MEMORY at the boundary
}

RwLock::~RwLock()
{
    if (cb_ && app_)
        cb_->destroy(app_);
}

void RwLock::lock()
{
    if (cb_)
        cb_->lock(app_);
    else
        os_.lock();
}

void RwLock::unlock()
{
    if (cb_)
        cb_->unlock(app_);
    else
        os_.unlock();
}

} // namespace ukey
