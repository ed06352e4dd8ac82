#include "token/slot_events.h"

#include "token/log.h"
#include "token/ukeyd_client.h"
#include "token/ukeyd_events.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <set>
#include <string_view>
#include <thread>
#include <vector>

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

namespace ukey {

namespace {

// Without the application's consent to OS locks a waiter cannot sleep on a
// condition variable; this is how often it looks again instead.
constexpr auto app_lock_poll = std::chrono::milliseconds(20);

void close_fd(int& fd)
{
    if (fd >= 0)
        ::close(fd);
    fd = -1;
}

} // namespace

SlotEvents::Monitor::Monitor(const MutexCallbacks* cb)
{
    if (cb)
        app_ = std::make_unique<RwLock>(cb);
}

void SlotEvents::Monitor::lock()
{
    if (app_)
        app_->lock();
    else
        os_.lock();
}

void SlotEvents::Monitor::unlock()
{
    if (app_)
        app_->unlock();
    else
        os_.unlock();
}

void SlotEvents::Monitor::wait(std::chrono::milliseconds most)
{
    if (app_) {
        app_->unlock();
        std::this_thread::sleep_for(std::min(most, std::chrono::milliseconds(app_lock_poll)));
        app_->lock();
        return;
    }
    std::unique_lock<std::mutex> l(os_, std::adopt_lock);
    cv_.wait_for(l, most);
    l.release();
}

void SlotEvents::Monitor::notify_all()
{
    if (!app_)
        cv_.notify_all();
}

SlotEvents::SlotEvents(std::filesystem::path socket, const MutexCallbacks* cb)
    : socket_(std::move(socket)), m_(cb), scan_lock_(cb),
      daemon_(std::make_unique<UkeydClient>(max_line, [this](int fd, short events, Clock::time_point deadline) {
          return wait_fd(fd, events, deadline);
      }))
{
    // O_CLOEXEC like every descriptor of ours: a library must not leak
    // descriptors into the programs its application runs.
    wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (wake_fd_ < 0)
        log::warning(std::string("C_WaitForSlotEvent: eventfd failed (") + std::strerror(errno) +
                     "); C_Finalize wakes blocked callers within 100 ms");
}

SlotEvents::~SlotEvents()
{
    close_fd(wake_fd_);
}

void SlotEvents::start(std::map<CK_SLOT_ID, bool> presence)
{
    std::lock_guard<Monitor> g(m_);
    reported_ = std::move(presence);
    queue_.clear();
}

void SlotEvents::shutdown()
{
    {
        std::lock_guard<Monitor> g(m_);
        stopped_ = true;
    }
    m_.notify_all();
    if (wake_fd_ >= 0) {
        const std::uint64_t one = 1;
        [[maybe_unused]] ssize_t n = ::write(wake_fd_, &one, sizeof one);
    }
}

void SlotEvents::forget_after_fork()
{
    // The parent's connection stays the parent's: a child reading from it
    // would steal the parent's events.
    daemon_->close();
    close_fd(wake_fd_);
}

bool SlotEvents::pop(CK_SLOT_ID& out)
{
    if (queue_.empty())
        return false;
    out = queue_.front();
    queue_.pop_front();
    return true;
}

void SlotEvents::note(CK_SLOT_ID id, bool present)
{
    reported_[id] = present;
    if (std::find(queue_.begin(), queue_.end(), id) == queue_.end())
        queue_.push_back(id);
}

CK_RV SlotEvents::next(bool block, const SlotSource& src, CK_SLOT_ID& out)
{
    std::unique_lock<Monitor> g(m_);
    // Takes the reader's part for one round; gives it back (and wakes the
    // others, one of whom takes it over) however the round ends.
    struct Reading {
        SlotEvents& e;
        std::unique_lock<Monitor>& g;
        Reading(SlotEvents& ev, std::unique_lock<Monitor>& lk) : e(ev), g(lk)
        {
            e.reading_ = true;
            g.unlock();
        }
        ~Reading()
        {
            if (!g.owns_lock())
                g.lock();
            e.reading_ = false;
            e.m_.notify_all();
        }
    };

    if (!block) {
        if (stopped_)
            return CKR_CRYPTOKI_NOT_INITIALIZED;
        if (pop(out))
            return CKR_OK;
        if (!reading_) {
            // What the daemon sent since, when no blocking caller reads it.
            // An application that only polls (CKF_DONT_BLOCK) subscribes
            // too, at its first call: it then learns of Keys its own
            // backends cannot see yet (other processes' SoftHSM2 tokens).
            Reading r(*this, g);
            if (!daemon_->connected() && Clock::now() >= next_connect_)
                try_connect();
            if (std::string why; daemon_->connected() && !pump(why))
                disconnect(why);
        }
        g.unlock();
        scan(src);
        g.lock();
        if (stopped_)
            return CKR_CRYPTOKI_NOT_INITIALIZED;
        return pop(out) ? CKR_OK : CKR_NO_EVENT;
    }

    for (;;) {
        if (stopped_)
            return CKR_CRYPTOKI_NOT_INITIALIZED;
        if (pop(out))
            return CKR_OK;
        if (reading_) {
            m_.wait(std::chrono::milliseconds(1000));
            continue;
        }
        Reading r(*this, g);
        read_round(src);
    }
}

void SlotEvents::scan(const SlotSource& src)
{
    std::lock_guard<RwLock> serial(scan_lock_);
    std::map<CK_SLOT_ID, bool> now = src.rescan();
    std::vector<Hint> hints;
    {
        std::lock_guard<Monitor> g(m_);
        hints.swap(hints_);
    }
    // The daemon's last word on each ID, with words kept from scans that
    // could not act on them yet.
    for (Hint& h : hints)
        pending_[h.id] = Pending{std::move(h), false};
    auto listed = [&now](CK_SLOT_ID id) {
        const auto it = now.find(id);
        return it != now.end() && it->second;
    };
    // The daemon's word on a Key is taken as it is: one it says is out
    // loses its sessions, as a pulled card does, and is listed as out, also
    // where its backend has not noticed or answers only errors for it
    // (SoftHSM2 and a token another process deleted); one it says is in is
    // no longer held out. Where the slot list still disagrees, the backend
    // is initialised again (another process's new SoftHSM2 token shows only
    // then).
    bool changed = false;
    for (const auto& [id, p] : pending_)
        if (!p.tried && (p.hint.present ? src.back : src.gone)) {
            (p.hint.present ? src.back : src.gone)(id);
            changed = true;
        }
    if (changed)
        now = src.rescan();
    std::map<std::string, bool> reload; // backend -> a word not tried before
    for (const auto& [id, p] : pending_)
        if (listed(id) != p.hint.present && !p.hint.backend.empty())
            reload[p.hint.backend] = reload[p.hint.backend] || !p.tried;
    changed = false;
    std::set<std::string> later;
    for (const auto& [b, first] : reload) {
        const auto r = src.reload ? src.reload(b, first) : SlotSource::Reload::never;
        changed = changed || r == SlotSource::Reload::done;
        if (r == SlotSource::Reload::later)
            later.insert(b);
    }
    if (changed)
        now = src.rescan();
    // Kept for the next scan: only what still disagrees because its backend
    // could not be initialised again now. A word that a fresh backend still
    // contradicts (a Key this process is not configured to see) is dropped:
    // trying again would only pause every call for nothing.
    std::erase_if(pending_, [&](const auto& kv) {
        return listed(kv.first) == kv.second.hint.present || !later.count(kv.second.hint.backend);
    });
    for (auto& [id, p] : pending_)
        p.tried = true;
    while (pending_.size() > max_hints)
        pending_.erase(pending_.begin());
    std::vector<std::pair<CK_SLOT_ID, bool>> keys, slots;
    std::lock_guard<Monitor> g(m_);
    for (const auto& [id, present] : now) {
        auto it = reported_.find(id);
        const bool before = it != reported_.end() && it->second;
        if (before != present)
            (src.names_key(id) ? keys : slots).emplace_back(id, present);
    }
    // A Key first: after C_InitToken the application wants the token, not
    // the empty slot SoftHSM2 adds next to it.
    for (const auto& [id, present] : keys)
        note(id, present);
    for (const auto& [id, present] : slots)
        note(id, present);
    if (!keys.empty() || !slots.empty())
        m_.notify_all();
}

void SlotEvents::read_round(const SlotSource& src)
{
    // The own rescan polls the backends only while an application thread
    // is blocked here (and at each CKF_DONT_BLOCK call); nothing runs in
    // the background otherwise.
    if (Clock::now() >= next_scan_) {
        scan(src);
        next_scan_ = Clock::now() + (daemon_->connected() ? Clock::duration(own_interval_with_daemon) : own_interval);
        return;
    }
    if (!daemon_->connected() && Clock::now() >= next_connect_) {
        try_connect();
        if (hinted())
            scan(src);
        return;
    }
    Clock::time_point until = next_scan_;
    if (!daemon_->connected())
        until = std::min(until, next_connect_);
    const int ready = wait_fd(daemon_->fd(), POLLIN, until);
    if (std::string why; ready == 1 && daemon_->connected()) {
        if (!pump(why))
            disconnect(why);
        if (hinted())
            scan(src);
    } else if (ready < 0) {
        // poll() itself failing (ENOMEM): do not spin on it.
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
}

int SlotEvents::wait_fd(int fd, short events, Clock::time_point deadline) const
{
    for (;;) {
        if (stopped_)
            return 0;
        const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now()).count();
        if (left <= 0)
            return 0;
        // Without an eventfd, look at the stop flag ten times a second.
        const int ms = static_cast<int>(std::min<long long>(left, wake_fd_ >= 0 ? INT_MAX : 100));
        pollfd p[2] = {{wake_fd_, POLLIN, 0}, {fd, events, 0}};
        const int r = ::poll(p, 2, ms);
        if (r < 0 && errno != EINTR)
            return -1;
        if (r <= 0)
            continue;
        if (p[0].revents)
            return 0;
        if (p[1].revents)
            return 1;
    }
}

void SlotEvents::try_connect()
{
    if (!subscribe()) {
        next_connect_ = Clock::now() + reconnect_interval;
        return;
    }
    // What came with the reply.
    while (auto line = daemon_->next_line())
        handle_line(*line);
}

bool SlotEvents::subscribe()
{
    const std::string path = socket_.string();
    const auto deadline = Clock::now() + connect_timeout;
    UkeydFailure f{UkeydFailure::failed, {}};
    auto e = daemon_->connect(path, deadline);
    if (!e) {
        const std::vector<std::string> events{std::string(event_name(UkeydEvent::key_inserted)),
                             std::string(event_name(UkeydEvent::key_removed))};
        if (!daemon_->request(UkeydClient::subscribe_request(events), deadline, f))
            e = f;
    }
    if (!e) {
        log::info("C_WaitForSlotEvent: subscribed to ukeyd at " + path);
        return true;
    }
    daemon_->close();
    if (e->kind == UkeydFailure::bad_path) {
        if (!warned_)
            log::warning("[daemon] socket '" + path + "' is not a usable socket path; C_WaitForSlotEvent polls instead");
        warned_ = true;
    } else if (e->misbehaved() && !stopped_ && !warned_) {
        log::warning("ukeyd at " + path + ": " + (e->kind == UkeydFailure::timeout ? "no reply to the subscription within 1 s" : e->why) +
                     "; C_WaitForSlotEvent polls instead");
        warned_ = true;
    } else {
        log::debug("C_WaitForSlotEvent: no ukeyd at " + path + ": " + e->why);
    }
    return false;
}

void SlotEvents::disconnect(const std::string& why)
{
    log::info("C_WaitForSlotEvent: ukeyd connection ended (" + why + "); polling the slot list");
    daemon_->close();
    const auto now = Clock::now();
    next_connect_ = now + reconnect_interval;
    next_scan_ = now; // an event may have been lost with the connection
}

bool SlotEvents::pump(std::string& why)
{
    const auto ended = daemon_->receive();
    // Whole lines are handled even when the connection ended after them; a
    // partial last line is dropped with the connection.
    while (auto line = daemon_->next_line())
        handle_line(*line);
    auto e = ended ? ended : daemon_->overlong();
    if (!e)
        return true;
    if (e->kind == UkeydFailure::too_long && !warned_) {
        log::warning("ukeyd sent a line longer than 64 KiB; reconnecting");
        warned_ = true;
    }
    why = e->why;
    return false;
}

void SlotEvents::handle_line(std::string_view line)
{
    const auto j = nlohmann::json::parse(line.begin(), line.end(), nullptr, false);
    if (!j.is_object()) {
        log::debug("C_WaitForSlotEvent: ignored a line from ukeyd that is not a JSON object");
        return;
    }
    const auto ev = j.find("event");
    const auto key = j.find("key");
    if (ev == j.end() || key == j.end() || !ev->is_string() || !key->is_object())
        return;
    const auto name = event_named(ev->get_ref<const std::string&>());
    if (name != UkeydEvent::key_inserted && name != UkeydEvent::key_removed)
        return;
    // A card no backend recognises ("source": "pcsc") has no slot ID.
    const auto sid = key->find("slot_id");
    if (sid == key->end() || !sid->is_number_unsigned())
        return;
    const auto id = sid->get<std::uint64_t>();
    if (id == 0 || id > static_cast<std::uint64_t>(static_cast<CK_SLOT_ID>(-1)))
        return;
    std::string backend;
    if (const auto b = key->find("backend"); b != key->end() && b->is_string() && b->get_ref<const std::string&>().size() <= 64)
        backend = b->get<std::string>();
    std::lock_guard<Monitor> g(m_);
    if (hints_.size() >= max_hints)
        hints_.erase(hints_.begin());
    hints_.push_back({static_cast<CK_SLOT_ID>(id), name == UkeydEvent::key_inserted, std::move(backend)});
}

bool SlotEvents::hinted()
{
    std::lock_guard<Monitor> g(m_);
    return !hints_.empty();
}

} // namespace ukey
