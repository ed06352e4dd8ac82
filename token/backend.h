// One backend PKCS#11 module: loaded with dlopen, initialised, finalised and
// unloaded by this RAII object (the Botan Module idea).
#pragma once

#include "token/config.h"
#include "token/fork.h"
#include "token/result.h"

#include <memory>
#include <mutex>
#include <string>

namespace ukey {

class Backend {
public:
    // Loads the module and fetches its function list; does not initialise it.
    static Result<std::unique_ptr<Backend>> load(const BackendConfig& cfg, unsigned index);
    ~Backend();
    Backend(const Backend&) = delete;
    Backend& operator=(const Backend&) = delete;

    // app_flags: the CKF_LIBRARY_CANT_CREATE_OS_THREADS wish of the application.
    // inherited: we are a forked child whose copy of the module the parent's
    // ukey initialised; it is finalised first, so the child starts clean (the
    // spec: a child must log in again, whatever its parent did).
    Result<void> initialize(CK_FLAGS app_flags, bool inherited);
    // Finalises the module if this object initialised it.
    void finalize();
    bool initialized_by_us() const { return initialized_by_us_; }
    // A forked child must not run the module's teardown: its locks may be
    // held by threads that do not exist in the child.
    void abandon();

    // Calls one function of the module. A NULL entry in the module's function
    // list (seen in the wild) reads as CKR_FUNCTION_NOT_SUPPORTED; a module
    // that cannot take OS locking is called under our own mutex.
    template <class Fn, class... Args>
    CK_RV call(Fn CK_FUNCTION_LIST::*fn, Args... args) const
    {
        auto f = fl_->*fn;
        if (!f)
            return CKR_FUNCTION_NOT_SUPPORTED;
        ForkGuard no_fork_meanwhile;
        if (serialize_) {
            std::lock_guard<std::mutex> g(mu_);
            return f(args...);
        }
        return f(args...);
    }

    // C_GetTokenInfo, by one thread of the process at a time: SoftHSM2 2.6
    // formats utcTime with gmtime(), whose result buffer libc shares between
    // all threads, so two threads in it at once race on that buffer (found
    // by ThreadSanitizer: a garbled clock at best). Not a hot path.
    CK_RV get_token_info(CK_SLOT_ID slot, CK_TOKEN_INFO* info) const;

    const std::string& name() const { return cfg_.name; }
    const std::string& module() const { return cfg_.module; }
    PinCounter pin_counter() const { return cfg_.pin_counter; }
    bool optional() const { return cfg_.optional; }
    bool fixes() const { return cfg_.fixes; }
    bool removable() const { return cfg_.removable; }
    unsigned index() const { return index_; }

private:
    Backend(BackendConfig cfg, unsigned index, void* dl, CK_FUNCTION_LIST* fl);

    BackendConfig cfg_;
    unsigned index_;
    void* dl_;
    CK_FUNCTION_LIST* fl_;
    bool initialized_by_us_ = false;
    bool serialize_ = false;
    mutable std::mutex mu_;
};

} // namespace ukey
