// C_WaitForSlotEvent's state: what was last reported, the events found but
// not yet returned, and the subscription to ukeyd (docs/ukeyd.md).
//
// An event is a slot ID whose presence in the slot list differs from what
// was last reported (a token in or out, a new slot or Key identity): always
// a slot C_GetSlotInfo and C_GetTokenInfo then know. A `key-inserted` or
// `key-removed` line from the daemon is a hint: it makes the slot list be
// read at once, and when the list still disagrees with the daemon, the
// Key's backend is initialised again (a SoftHSM2 shows another process's
// new token only then) and the list read once more.
// Events wait in one queue per Proxy, each slot at most once, and go to
// whichever caller asks first.
//
// Blocking callers: one of them at a time (the "reader") polls the daemon's
// socket and rescans the slot list on a timer; the others wait until the
// reader finds something or leaves. Without a daemon the own rescan runs
// every second, with one every few seconds (the daemon does not see changes
// made inside this process, such as C_InitToken on an empty SoftHSM2 slot).
// A CKF_DONT_BLOCK call subscribes as well (at most every few seconds while
// no daemon answers) and takes what the daemon sent since, without waiting.
#pragma once

#include "token/lock.h"

#include <ukey/pkcs11.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

namespace ukey {

class UkeydClient; // token/ukeyd_client.h: nlohmann/json stays out of this header

// How SlotEvents sees the slot list, without knowing the Proxy.
struct SlotSource {
    // Refreshes the list from the backends; every ID seen → listed with a
    // token now (SlotTable::presence()).
    std::function<std::map<CK_SLOT_ID, bool>()> rescan;
    // Whether the ID names a Key (those are reported before bare slots).
    std::function<bool(CK_SLOT_ID)> names_key;
    // Initialises the named backend again (it shows another process's new
    // Key only then): done, not now (sessions are open on it: `first` says
    // whether this is the first try for this word of the daemon, for the
    // log), or never (unknown, or not ours to restart). May be empty.
    enum class Reload { done, later, never };
    std::function<Reload(const std::string& backend, bool first)> reload;
    // The daemon says this Key is out: its sessions end and it is listed
    // as out, also where its backend has not noticed. May be empty.
    std::function<void(CK_SLOT_ID)> gone;
    // The daemon says this Key is in: no longer held out by `gone`.
    std::function<void(CK_SLOT_ID)> back;
};

class SlotEvents {
public:
    // cb: the application's mutex callbacks, when they must be used.
    SlotEvents(std::filesystem::path socket, const MutexCallbacks* cb);
    ~SlotEvents();
    SlotEvents(const SlotEvents&) = delete;
    SlotEvents& operator=(const SlotEvents&) = delete;

    // The presence the application is taken to know (at C_Initialize).
    void start(std::map<CK_SLOT_ID, bool> presence);
    // CKR_OK with *out set, CKR_NO_EVENT (only when !block), or
    // CKR_CRYPTOKI_NOT_INITIALIZED after shutdown().
    CK_RV next(bool block, const SlotSource& src, CK_SLOT_ID& out);
    // C_Finalize: every caller inside next() returns promptly.
    void shutdown();
    // In a forked child, on the parent's copy: closes its descriptors and
    // touches nothing else (its locks may be held by threads gone here).
    void forget_after_fork();

    static constexpr auto own_interval = std::chrono::seconds(1);
    static constexpr auto own_interval_with_daemon = std::chrono::seconds(5);
    static constexpr auto reconnect_interval = std::chrono::seconds(3);
    static constexpr auto connect_timeout = std::chrono::milliseconds(1000);
    static constexpr std::size_t max_line = 64 * 1024;

private:
    using Clock = std::chrono::steady_clock;

    // The lock on the state below, and waiting on it. OS locking: a
    // std::mutex and a std::condition_variable of our own. With the
    // application's mutex callbacks (no CKF_OS_LOCKING_OK) we may take no
    // OS lock, so the lock is the application's mutex and waiting is a
    // short sleep with it released.
    class Monitor {
    public:
        explicit Monitor(const MutexCallbacks* cb);
        void lock();
        void unlock();
        // Locked on entry and return; wakes on notify_all() or after `most`.
        void wait(std::chrono::milliseconds most);
        void notify_all();

    private:
        std::mutex os_;
        std::condition_variable cv_;
        std::unique_ptr<RwLock> app_;
    };

    // Reader only (reading_ held), state lock not held: one round of
    // rescan / connect / poll, up to the next timer or a daemon line.
    void read_round(const SlotSource& src);
    // Rescans and queues every difference; serialised, so that an older
    // scan never overwrites a newer one. Takes the daemon's hints.
    void scan(const SlotSource& src);
    bool hinted(); // locks: hints are waiting
    // Locked: records the state as reported and queues the slot.
    void note(CK_SLOT_ID id, bool present);
    bool pop(CK_SLOT_ID& out);

    // Daemon connection, reader only.
    // Subscribes, or schedules the next attempt.
    void try_connect();
    bool subscribe();
    void disconnect(const std::string& why);
    // Reads and handles what the daemon sent; false (and why) when the
    // connection must end.
    bool pump(std::string& why);
    void handle_line(std::string_view line);
    // Waits for fd to be ready for `events` (or the wake descriptor) until
    // the deadline: 1 ready, 0 timed out or woken, -1 error.
    int wait_fd(int fd, short events, Clock::time_point deadline) const;

    const std::filesystem::path socket_;
    Monitor m_;
    RwLock scan_lock_;
    int wake_fd_ = -1; // eventfd, readable once shutdown() ran

    std::atomic<bool> stopped_{false}; // set under m_; also read by poll loops
    // Under m_.
    bool reading_ = false; // a blocking caller is the reader
    std::map<CK_SLOT_ID, bool> reported_;
    std::deque<CK_SLOT_ID> queue_;
    // The daemon's word since the last scan: slot ID, in or out, backend.
    struct Hint {
        CK_SLOT_ID id;
        bool present;
        std::string backend;
    };
    std::vector<Hint> hints_;
    static constexpr std::size_t max_hints = 64;
    // Scan only (scan_lock_): the daemon's word that the slot list still
    // contradicts after a scan because the backend could not be initialised
    // again then (sessions were open on it), tried again at each later scan.
    struct Pending {
        Hint hint;
        bool tried = false;
    };
    std::map<CK_SLOT_ID, Pending> pending_;

    // The reader's.
    std::unique_ptr<UkeydClient> daemon_;
    Clock::time_point next_scan_{};
    Clock::time_point next_connect_{};
    bool warned_ = false; // one warning per Proxy about a daemon that misbehaves
};

} // namespace ukey
