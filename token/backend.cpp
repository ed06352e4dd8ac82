#include "token/backend.h"

#include "token/ckr_name.h"
#include "token/file_trust.h"
#include "token/log.h"

#include <dlfcn.h>
#include <mutex>

namespace ukey {

namespace {
std::string rv_text(CK_RV rv)
{
    char hex[32];
    snprintf(hex, sizeof hex, "0x%lx", static_cast<unsigned long>(rv));
    return ckr_name(rv) + " (" + hex + ")";
}
} // namespace

Backend::Backend(BackendConfig cfg, unsigned index, void* dl, CK_FUNCTION_LIST* fl)
    : cfg_(std::move(cfg)), index_(index), dl_(dl), fl_(fl)
{
}

Backend::~Backend()
{
    finalize();
    if (dl_)
        dlclose(dl_);
}

Result<std::unique_ptr<Backend>> Backend::load(const BackendConfig& cfg, unsigned index)
{
    const std::string who = "backend '" + cfg.name + "' (" + cfg.module + ")";
    // Its code runs in our process: checked before dlopen runs a line of it
    // (its constructors), and loaded by the path that was checked.
    auto file = trusted_file(cfg.module, "backend module");
    if (!file)
        return Error{CKR_FUNCTION_FAILED, is_refusal(file.error())
                                              ? who + ": " + file.error().message
                                              : "cannot load " + who + ": " + file.error().message +
                                                    "; check the module path in the config"};
    for (const auto& name : scrub_backend_environment())
        log::info("privileged process: " + name + " removed from the environment before loading backends");
    dlerror();
    void* dl = dlopen(file->c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!dl) {
        const char* why = dlerror();
        return Error{CKR_FUNCTION_FAILED, "cannot load " + who + ": " + (why ? why : "unknown reason") +
                                              "; check the module path in the config"};
    }
    auto get = reinterpret_cast<CK_C_GetFunctionList>(dlsym(dl, "C_GetFunctionList"));
    if (!get) {
        dlclose(dl);
        return Error{CKR_FUNCTION_FAILED, who + " is not a PKCS#11 module: it has no C_GetFunctionList"};
    }
    CK_FUNCTION_LIST* fl = nullptr;
    CK_RV rv = get(&fl);
    if (rv != CKR_OK || !fl) {
        dlclose(dl);
        return Error{CKR_FUNCTION_FAILED, who + ": C_GetFunctionList failed: " + rv_text(rv)};
    }
    if (fl->version.major != 2) {
        dlclose(dl);
        return Error{CKR_FUNCTION_FAILED, who + " offers PKCS#11 version " + std::to_string(fl->version.major) +
                                              "." + std::to_string(fl->version.minor) + ", ukey needs 2.x"};
    }
    return std::unique_ptr<Backend>(new Backend(cfg, index, dl, fl));
}

Result<void> Backend::initialize(CK_FLAGS app_flags, bool inherited)
{
    const std::string who = "backend '" + cfg_.name + "' (" + cfg_.module + ")";
    if (inherited) {
        // No thread was inside the module at fork() (ForkGuard), so its
        // state is whole and may be torn down in the child.
        call(&CK_FUNCTION_LIST::C_Finalize, static_cast<CK_VOID_PTR>(nullptr));
    }
    CK_C_INITIALIZE_ARGS args{};
    args.flags = CKF_OS_LOCKING_OK | (app_flags & CKF_LIBRARY_CANT_CREATE_OS_THREADS);
    CK_RV rv = call(&CK_FUNCTION_LIST::C_Initialize, static_cast<CK_VOID_PTR>(&args));
    if (rv == CKR_CANT_LOCK) {
        // A single-threaded module: we serialise every call to it ourselves.
        args.flags &= ~CKF_OS_LOCKING_OK;
        rv = call(&CK_FUNCTION_LIST::C_Initialize, static_cast<CK_VOID_PTR>(&args));
        if (rv == CKR_OK) {
            serialize_ = true;
            log::info(who + " cannot use OS locking; ukey serialises its calls");
        }
    }
    if (rv == CKR_CRYPTOKI_ALREADY_INITIALIZED) {
        // Someone else in this process (another copy of ukey, or the
        // application itself) initialised it: use it, but leave its
        // finalisation to them.
        log::info(who + " was already initialised in this process; ukey shares it");
        return {};
    }
    if (rv != CKR_OK)
        return Error{CKR_FUNCTION_FAILED, who + ": C_Initialize failed: " + rv_text(rv)};
    initialized_by_us_ = true;
    return {};
}

void Backend::finalize()
{
    if (initialized_by_us_) {
        initialized_by_us_ = false;
        call(&CK_FUNCTION_LIST::C_Finalize, static_cast<CK_VOID_PTR>(nullptr));
    }
}

CK_RV Backend::get_token_info(CK_SLOT_ID slot, CK_TOKEN_INFO* info) const
{
    static std::mutex gmtime_users;
    // The guard before the lock: fork() waits for this thread to leave, so
    // a child never inherits the lock taken (call() nests its own guard).
    ForkGuard no_fork_meanwhile;
    std::lock_guard<std::mutex> one_at_a_time(gmtime_users);
    return call(&CK_FUNCTION_LIST::C_GetTokenInfo, slot, info);
}

void Backend::abandon()
{
    initialized_by_us_ = false;
    dl_ = nullptr; // keep the code mapped: nothing of the parent's may run its teardown
}

} // namespace ukey
