// Proxy lifecycle: C_Initialize, C_Finalize, fork, C_GetInfo.
#include "token/proxy.h"

#include "token/fork.h"
#include "token/log.h"
#include "token/peer_access.h"
#include "token/text_field.h"

#include <cstring>
#include <mutex>
#include <new>
#include <pthread.h>
#include <set>

namespace ukey {

std::atomic<Proxy*> Proxy::active_{nullptr};
Proxy* Proxy::abandoned_ = nullptr;
std::atomic<unsigned> Proxy::waiting_{0};

namespace {

// Serialises C_Initialize/C_Finalize. Rebuilt in a forked child: a thread of
// the parent may have held it at the moment of fork().
alignas(std::mutex) unsigned char lifecycle_storage[sizeof(std::mutex)];
std::mutex& lifecycle()
{
    return *std::launder(reinterpret_cast<std::mutex*>(lifecycle_storage));
}
void rebuild_lifecycle_lock()
{
    new (lifecycle_storage) std::mutex;
}
void after_fork_in_child();
struct LifecycleInit {
    LifecycleInit()
    {
        new (lifecycle_storage) std::mutex;
        install_fork_handler();
        pthread_atfork(nullptr, nullptr, after_fork_in_child);
    }
} lifecycle_init;

// CK_C_INITIALIZE_ARGS → which locks to use (PKCS#11 v2.40 §5.4).
CK_RV read_init_args(CK_VOID_PTR p, std::optional<MutexCallbacks>& cb, CK_FLAGS& flags)
{
    flags = 0;
    if (!p)
        return CKR_OK;
    const auto* a = static_cast<const CK_C_INITIALIZE_ARGS*>(p);
    if (a->pReserved)
        return CKR_ARGUMENTS_BAD;
    const int given = !!a->CreateMutex + !!a->DestroyMutex + !!a->LockMutex + !!a->UnlockMutex;
    if (given != 0 && given != 4)
        return CKR_ARGUMENTS_BAD;
    flags = a->flags;
    // With CKF_OS_LOCKING_OK we may choose OS locking even when callbacks are
    // given; without it, given callbacks must be used.
    if (given == 4 && !(a->flags & CKF_OS_LOCKING_OK))
        cb = MutexCallbacks{a->CreateMutex, a->DestroyMutex, a->LockMutex, a->UnlockMutex};
    return CKR_OK;
}

} // namespace

unsigned Proxy::current_fork_generation()
{
    return fork_generation();
}

Proxy::Proxy(Config cfg, std::optional<MutexCallbacks> cb)
    : callbacks_(cb), config_(std::move(cfg)), slots_(callbacks_ ? &*callbacks_ : nullptr),
      sessions_(callbacks_ ? &*callbacks_ : nullptr), objects_(callbacks_ ? &*callbacks_ : nullptr),
      tags_lock_(callbacks_ ? &*callbacks_ : nullptr), keys_lock_(callbacks_ ? &*callbacks_ : nullptr),
      events_(config_.daemon_socket, callbacks_ ? &*callbacks_ : nullptr)
{
}

namespace {
void after_fork_in_child()
{
    rebuild_lifecycle_lock();
    // The parent's threads blocked in C_WaitForSlotEvent do not exist here.
    Proxy::forget_waiters();
}
} // namespace

Proxy::~Proxy()
{
    // Layers first: they may hold what they need of a backend.
    stacks_.clear();
    // Backends finalise in reverse order of loading.
    while (!backends_.empty())
        backends_.pop_back();
}

CK_RV Proxy::Initialize(CK_VOID_PTR pInitArgs)
{
    std::optional<MutexCallbacks> cb;
    CK_FLAGS flags = 0;
    if (CK_RV rv = read_init_args(pInitArgs, cb, flags); rv != CKR_OK)
        return rv;

    std::lock_guard<std::mutex> g(lifecycle());
    Proxy* old = active_.load(std::memory_order_acquire);
    if (old && old->fork_generation_ == fork_generation())
        return CKR_CRYPTOKI_ALREADY_INITIALIZED;
    std::set<std::string> inherited; // modules the parent's ukey initialised
    if (old) {
        // The parent's Proxy, copied into this child: its locks may be held
        // by threads that do not exist here, so it is left untouched (and
        // its memory is not reclaimed) rather than torn down.
        for (auto& b : old->backends_) {
            if (b->initialized_by_us())
                inherited.insert(b->module());
            b->abandon();
        }
        old->events_.forget_after_fork();
        old->next_abandoned_ = abandoned_;
        abandoned_ = old;
        active_.store(nullptr, std::memory_order_release);
    }

    auto cfg = load_config(config_path());
    if (!cfg) {
        log::error(cfg.error().message);
        return cfg.error().rv;
    }
    log::configure(cfg->log);
    // Service mode: the peer's backends only (docs/service-mode.md).
    if (auto r = restrict_to_served_peer(*cfg); !r) {
        log::error(r.error().message);
        return r.error().rv;
    }

    std::unique_ptr<Proxy> p(new Proxy(*cfg, cb));
    p->fork_generation_ = fork_generation();
    p->init_flags_ = flags;
    p->serving_ = served_peer().has_value();
    for (std::size_t i = 0; i < p->config_.backends.size(); ++i) {
        const BackendConfig& bc = p->config_.backends[i];
        auto b = Backend::load(bc, static_cast<unsigned>(i));
        Result<void> ready = b ? (*b)->initialize(flags, inherited.count(bc.module) > 0) : Result<void>(b.error());
        if (!ready) {
            if (bc.optional) {
                log::warning(ready.error().message + " (optional backend: skipped)");
                continue;
            }
            log::error(ready.error().message);
            return ready.error().rv;
        }
        p->backends_.push_back(std::move(*b));
    }
    // Each backend's stack of layers (token/stack.cpp), by its index.
    const LayerContext ctx{p->config_, p->sessions_, p->callbacks_ ? &*p->callbacks_ : nullptr};
    p->stacks_.resize(p->config_.backends.size());
    for (auto& b : p->backends_)
        p->stacks_[b->index()] = std::make_unique<BackendStack>(*b, ctx);
    p->refresh_slots();
    p->events_.start(p->slots_.presence());
    active_.store(p.release(), std::memory_order_release);
    return CKR_OK;
}

CK_RV Proxy::Finalize(CK_VOID_PTR pReserved)
{
    if (pReserved)
        return CKR_ARGUMENTS_BAD;
    std::lock_guard<std::mutex> g(lifecycle());
    Proxy* p = active();
    if (!p)
        return CKR_CRYPTOKI_NOT_INITIALIZED;
    // Callers blocked in C_WaitForSlotEvent return CKR_CRYPTOKI_NOT_INITIALIZED;
    // p is freed once the last has left. They take no lock C_Finalize holds,
    // so this wait ends as soon as each is out of its current backend call.
    active_.store(nullptr);
    p->events_.shutdown();
    for (unsigned n; (n = waiting_.load()) != 0;)
        waiting_.wait(n);
    delete p;
    return CKR_OK;
}

CK_RV Proxy::GetInfo(CK_INFO_PTR pInfo)
{
    if (!pInfo)
        return CKR_ARGUMENTS_BAD;
    std::memset(pInfo, 0, sizeof *pInfo);
    pInfo->cryptokiVersion = {CRYPTOKI_VERSION_MAJOR, CRYPTOKI_VERSION_MINOR};
    pad_field(pInfo->manufacturerID, sizeof pInfo->manufacturerID, "ukey");
    pad_field(pInfo->libraryDescription, sizeof pInfo->libraryDescription, "ukey USB Key middleware");
    pInfo->libraryVersion = {UKEY_VERSION_MAJOR, UKEY_VERSION_MINOR};
    return CKR_OK;
}

} // namespace ukey
