// PcscWatch: see pcsc_watch.h. The lessons behind each guard are in
// tests/pcsc/README.md ("Findings"); probe.cpp there is the tested model.

#include "pcsc_watch.h"

#include "pcsc_common.h"

#include <PCSC/pcsclite.h>
#include <PCSC/winscard.h>
#include <PCSC/wintypes.h>

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>
#include <system_error>
#include <thread>
#include <vector>

namespace ukey::daemon {

const char* to_string(PcscEvent::Kind k) {
    switch (k) {
    case PcscEvent::Kind::up: return "up";
    case PcscEvent::Kind::down: return "down";
    case PcscEvent::Kind::reader_added: return "reader-added";
    case PcscEvent::Kind::reader_removed: return "reader-removed";
    case PcscEvent::Kind::reader_unusable: return "reader-unusable";
    case PcscEvent::Kind::card_inserted: return "card-inserted";
    case PcscEvent::Kind::card_removed: return "card-removed";
    }
    return "unknown";
}

namespace {

using Kind = PcscEvent::Kind;

// Wake-ups in a row that bring nothing new before we nap: pcscd can return at
// once forever (see README, "unusable reader"), and no state feedback of ours
// must be able to turn that into 100 % CPU.
constexpr int kIdleWakeupsBeforeNap = 3;
constexpr int kNapMs = 100;
// While pcscd is down, inotify on its socket does the real work; the back-off
// only covers what inotify cannot see (another mount namespace, a socket
// that existed before pcscd listened on it, no inotify at all).
constexpr int kRetryFirstMs = 250;
constexpr int kRetryMaxMs = 5000;
// SCardCancel is a no-op unless the other thread is already inside the wait
// (libpcsclite's `cancellable` flag), so stop() repeats it until the thread
// is gone.
constexpr auto kCancelRepeat = std::chrono::milliseconds(10);

int64_t now_ms() {
    timespec ts{};
    clock_gettime(CLOCK_REALTIME, &ts);
    return int64_t{ts.tv_sec} * 1000 + ts.tv_nsec / 1000000;
}

using pcsc::hex;
using pcsc::service_lost;
using pcsc::Reader;

std::string down_message(LONG rv) {
    const char* again = "; waiting for it to come back (if it does not: systemctl start pcscd.socket)";
    switch (rv) {
    case SCARD_E_NO_SERVICE:
        return "pcscd, the PC/SC service, is not running (SCARD_E_NO_SERVICE); "
               "start it with: systemctl start pcscd.socket";
    case SCARD_F_COMM_ERROR:
        return std::string("the connection to pcscd broke (pcscd stopped or crashed)") + again;
    case SCARD_E_SERVICE_STOPPED:
        return std::string("pcscd stopped") + again;
    default:
        return std::string("pcscd failed: ") + pcsc_stringify_error(rv) + again;
    }
}

std::string socket_path() {
    // Same rule as libpcsclite, so that we watch the socket it will use.
    const char* e = secure_getenv("PCSCLITE_CSOCK_NAME");
    return e && *e ? e : "/run/pcscd/pcscd.comm";
}

// poll() that cannot become a busy loop: should poll itself fail (it should
// not), the caller still loses time as if it had waited.
int wait_fds(pollfd* p, nfds_t n, int ms) {
    int r;
    while ((r = poll(p, n, ms)) < 0 && errno == EINTR) {
    }
    if (r >= 0) return r;
    std::this_thread::sleep_for(std::chrono::milliseconds(std::min(ms, kNapMs)));
    return 0;
}

// SCARD_AUTOALLOCATE: no length race between two calls while readers change.
LONG list_readers(SCARDCONTEXT ctx, std::vector<std::string>& out) {
    out.clear();
    char* buf = nullptr;
    DWORD len = SCARD_AUTOALLOCATE;
    LONG rv = SCardListReaders(ctx, nullptr, reinterpret_cast<char*>(&buf), &len);
    if (rv == SCARD_E_NO_READERS_AVAILABLE) return SCARD_S_SUCCESS;
    if (rv != SCARD_S_SUCCESS) return rv;
    struct Free {
        SCARDCONTEXT c;
        char* b;
        ~Free() { SCardFreeMemory(c, b); }
    } free_buf{ctx, buf};
    for (const char* p = buf; p < buf + len && *p; p += std::strlen(p) + 1) out.emplace_back(p);
    return SCARD_S_SUCCESS;
}

} // namespace

struct PcscWatch::Impl {
    explicit Impl(Sink s) : sink(std::move(s)) {}
    // Closing an inotify fd waits for the kernel (SRCU, 5-15 ms measured),
    // so it happens here rather than on stop()'s path.
    ~Impl() {
        if (inotify_fd >= 0) close(inotify_fd);
    }

    Sink sink;
    std::thread thread;

    // Shared with stop(); the context is only created, stored and released
    // under `mu`, so stop() never cancels a released handle.
    std::mutex mu;
    std::condition_variable cv;
    bool stopping = false;
    bool done = false;
    bool have_ctx = false;
    SCARDCONTEXT ctx = 0;
    int wake_fd = -1; // eventfd: stop() wakes naps and the wait for pcscd

    // The thread's own state.
    std::map<std::string, Reader> readers;
    DWORD pnp_state = SCARD_STATE_UNAWARE;
    bool up = false;
    bool down_reported = false;
    int retry_ms = kRetryFirstMs;
    int inotify_fd = -1;
    int watch_wd = -1;
    std::string watch_dir, watch_name; // wake when `watch_name` in `watch_dir` changes
    // What ended the last wait for pcscd (PcscEvent::woken_by of `up`).
    const char* woken_by = "start";
    int woken_backoff_ms = 0;
    // How the thread saw stop() (PcscWatch::stopped_by); the first one counts.
    const char* stop_cause = "";
    LONG last_wait_rv = SCARD_S_SUCCESS;

    void saw_stop(const char* how) {
        if (!*stop_cause) stop_cause = how;
    }
    // After a poll that ended because `n` fds were ready (0: its timeout),
    // with the wake pipe at p: the wake pipe ended it, or the timer did.
    // (A stop() that comes while the thread is not yet back from a timed-out
    // poll is still seen as "wake": the kernel looks at the fds once more
    // before poll returns.)
    static const char* stop_seen(int n, const pollfd& p) {
        if (n > 0 && (p.revents & POLLIN)) return "wake";
        return n == 0 ? "timer" : "flag";
    }

    bool is_stopping() {
        std::lock_guard lk(mu);
        return stopping;
    }

    void emit(Kind k, int64_t t, const std::string& reader = {}, std::string atr = {},
              LONG code = 0, std::string message = {}) noexcept {
        try {
            PcscEvent ev;
            ev.kind = k;
            ev.reader = reader;
            ev.atr = std::move(atr);
            ev.code = code;
            ev.message = std::move(message);
            ev.time_ms = t;
            if (k == Kind::up) {
                ev.woken_by = woken_by;
                ev.backoff_ms = woken_backoff_ms;
            }
            sink(std::move(ev));
        } catch (...) {
            // A failing sink loses one event; the watcher must go on.
        }
    }

    LONG connect() {
        SCARDCONTEXT c = 0;
        LONG rv = SCardEstablishContext(SCARD_SCOPE_SYSTEM, nullptr, nullptr, &c);
        if (rv != SCARD_S_SUCCESS) return rv;
        std::lock_guard lk(mu);
        if (stopping) {
            SCardReleaseContext(c);
            return SCARD_E_CANCELLED;
        }
        ctx = c;
        have_ctx = true;
        return SCARD_S_SUCCESS;
    }

    void release_context() noexcept {
        std::lock_guard lk(mu);
        if (have_ctx) SCardReleaseContext(ctx);
        have_ctx = false;
    }

    // Sleeps up to ms unless stop() is called; false when stopping.
    bool nap(int ms) {
        pollfd p{wake_fd, POLLIN, 0};
        const int n = wait_fds(&p, 1, ms);
        if (!is_stopping()) return true;
        saw_stop(stop_seen(n, p));
        return false;
    }

    // pcscd is unreachable: report it once, with every reader it took along.
    void lost(LONG rv, int64_t t) {
        release_context();
        woken_by = "reconnect"; // the next attempt comes at once
        woken_backoff_ms = 0;
        if (down_reported) return;
        emit(Kind::down, t, {}, {}, rv, down_message(rv));
        for (auto& [name, r] : readers) emit(Kind::reader_removed, t, name);
        readers.clear();
        pnp_state = SCARD_STATE_UNAWARE;
        up = false;
        down_reported = true;
    }

    void disarm_inotify() {
        if (watch_wd >= 0) inotify_rm_watch(inotify_fd, watch_wd);
        watch_wd = -1;
        watch_dir.clear();
    }

    // Watches the socket's folder, or its nearest existing ancestor for the
    // next path component, re-aimed each time as folders appear or vanish.
    void arm_inotify() {
        if (inotify_fd < 0) inotify_fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
        if (inotify_fd < 0) return; // the back-off alone will do
        // Aimed again after each new watch: a folder made between looking and
        // watching sends no event, but the second look finds it.
        for (int i = 0; i < 16; ++i) {
            namespace fs = std::filesystem;
            fs::path sock = socket_path();
            fs::path dir = sock.parent_path();
            std::string name = sock.filename();
            std::error_code ec;
            while (!dir.empty() && !fs::is_directory(dir, ec) && dir != dir.parent_path()) {
                name = dir.filename();
                dir = dir.parent_path();
            }
            if (dir.empty()) dir = ".";
            if (watch_wd >= 0 && watch_dir == dir.string() && watch_name == name) return;
            if (watch_wd >= 0) inotify_rm_watch(inotify_fd, watch_wd);
            watch_wd = inotify_add_watch(inotify_fd, dir.c_str(),
                                         IN_CREATE | IN_ATTRIB | IN_MOVED_TO | IN_DELETE_SELF |
                                             IN_MOVE_SELF | IN_ONLYDIR);
            watch_dir = watch_wd >= 0 ? dir.string() : std::string();
            watch_name = name;
            if (watch_wd < 0) return;
        }
    }

    // True if the inotify events concern the path to the socket.
    bool drain_inotify() {
        alignas(inotify_event) char buf[4096];
        bool relevant = false;
        for (;;) {
            ssize_t n = read(inotify_fd, buf, sizeof buf);
            if (n < 0 && errno != EAGAIN && errno != EINTR) {
                // Readable but unreadable would wake poll() at once, forever.
                close(inotify_fd);
                inotify_fd = watch_wd = -1;
                watch_dir.clear();
                return true;
            }
            if (n <= 0) break;
            for (char* p = buf; p < buf + n;) {
                auto* e = reinterpret_cast<inotify_event*>(p);
                if (e->mask & IN_Q_OVERFLOW) {
                    relevant = true;
                } else if (e->wd != watch_wd) {
                    // left over from a watch re-aimed meanwhile
                } else if (e->mask & (IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF)) {
                    relevant = true;
                    if (e->mask & IN_IGNORED) watch_wd = -1; // the kernel dropped it
                    watch_dir.clear(); // re-aim at whatever exists now
                } else if (e->len && watch_name == e->name) {
                    relevant = true;
                }
                p += sizeof(inotify_event) + e->len;
            }
        }
        return relevant;
    }

    // Blocks until pcscd may be back (socket path touched, or the back-off
    // elapsed); false when stopping.
    bool wait_for_pcscd() {
        const int64_t deadline = now_ms() + retry_ms;
        for (;;) {
            pollfd p[2] = {{wake_fd, POLLIN, 0}, {inotify_fd, POLLIN, 0}};
            int64_t left = std::max<int64_t>(0, deadline - now_ms());
            int n = wait_fds(p, inotify_fd >= 0 ? 2 : 1, static_cast<int>(left));
            if (is_stopping()) {
                saw_stop(stop_seen(n, p[0]));
                return false;
            }
            if (n > 0 && (p[1].revents & POLLIN) && drain_inotify()) {
                woken_by = "inotify";
                woken_backoff_ms = 0;
                retry_ms = kRetryFirstMs; // pcscd is starting: retry soon again
                return true;
            }
            if (n == 0 || now_ms() >= deadline) {
                woken_by = "back-off";
                woken_backoff_ms = retry_ms;
                retry_ms = std::min(retry_ms * 2, kRetryMaxMs);
                return true;
            }
        }
    }

    // Re-reads the reader list and reports the difference.
    LONG refresh(int64_t t, bool& news) {
        std::vector<std::string> names;
        LONG rv = list_readers(ctx, names);
        if (rv != SCARD_S_SUCCESS) return rv;
        for (auto it = readers.begin(); it != readers.end();) {
            if (std::find(names.begin(), names.end(), it->first) != names.end()) {
                ++it;
                continue;
            }
            news = true;
            emit(Kind::reader_removed, t, it->first);
            it = readers.erase(it);
        }
        for (auto& n : names) {
            if (readers.count(n)) continue;
            news = true;
            readers[n] = Reader{};
            emit(Kind::reader_added, t, n);
        }
        return SCARD_S_SUCCESS;
    }

    // One SCardGetStatusChange and its consequences; returns the PC/SC error
    // that ended it, if any.
    LONG wait_once(bool& news) {
        std::vector<SCARD_READERSTATE> st = pcsc::wait_states(pnp_state, readers);
        LONG rv = SCardGetStatusChange(ctx, INFINITE, st.data(), static_cast<DWORD>(st.size()));
        const int64_t t = now_ms();
        last_wait_rv = rv;
        if (rv == SCARD_E_CANCELLED) return SCARD_S_SUCCESS; // stop() or a stray cancel
        if (rv == SCARD_E_UNKNOWN_READER || rv == SCARD_E_TIMEOUT) return refresh(t, news);
        if (rv != SCARD_S_SUCCESS) return rv;

        bool list_changed = pcsc::list_changed(st[0], pnp_state, news);
        std::size_t i = 1;
        for (auto& [name, r] : readers) {
            const SCARD_READERSTATE& s = st[i++];
            if (r.unusable || !(s.dwEventState & SCARD_STATE_CHANGED)) continue;
            const DWORD ns = s.dwEventState & ~DWORD{SCARD_STATE_CHANGED};
            if ((ns & 0xFFFF) == 0) {
                // pcscd 1.9.9 lists a reader whose driver failed to load with no
                // state bits: fed back, that returns at once, forever.
                r.unusable = true;
                news = true;
                emit(Kind::reader_unusable, t, name);
                continue;
            }
            if (ns == r.state) continue;
            news = true;
            const DWORD old = r.state;
            r.state = ns;
            if (ns & (SCARD_STATE_UNKNOWN | SCARD_STATE_UNAVAILABLE)) {
                list_changed = true;
                continue;
            }
            const bool present = ns & SCARD_STATE_PRESENT;
            // The high 16 bits count insertions and removals: a different count
            // with a card present both times means it was swapped meanwhile.
            const bool swapped = present && r.present && (ns >> 16) != (old >> 16);
            if (r.present && (!present || swapped)) emit(Kind::card_removed, t, name);
            if (present && (!r.present || swapped))
                emit(Kind::card_inserted, t, name, hex(s.rgbAtr, std::min<DWORD>(s.cbAtr, MAX_ATR_SIZE)));
            r.present = present;
        }
        if (list_changed) return refresh(t, news);
        return SCARD_S_SUCCESS;
    }

    void loop() {
        int idle_wakeups = 0;
        while (!is_stopping()) {
            if (!have_ctx) {
                // Armed before the attempt: a socket (or folder) created
                // after a failed attempt then always wakes the wait.
                if (!up) arm_inotify();
                LONG rv = connect();
                const int64_t t = now_ms();
                if (is_stopping()) {
                    saw_stop("flag");
                    return;
                }
                if (rv != SCARD_S_SUCCESS) {
                    lost(rv, t);
                    if (!wait_for_pcscd()) return;
                    continue;
                }
                if (!up) {
                    disarm_inotify();
                    emit(Kind::up, t);
                    up = true;
                    down_reported = false;
                    retry_ms = kRetryFirstMs;
                }
                bool news = false;
                rv = refresh(t, news);
                if (rv != SCARD_S_SUCCESS) {
                    fail(rv, t);
                    continue;
                }
            }
            bool news = false;
            LONG rv = wait_once(news);
            if (is_stopping()) {
                saw_stop(last_wait_rv == SCARD_E_CANCELLED ? "cancel" : "flag");
                return;
            }
            if (rv != SCARD_S_SUCCESS) {
                fail(rv, now_ms());
                continue;
            }
            if (news) {
                idle_wakeups = 0;
                retry_ms = kRetryFirstMs;
            } else if (++idle_wakeups >= kIdleWakeupsBeforeNap && !nap(kNapMs)) {
                return;
            }
        }
        saw_stop("flag");
    }


    // An error from a call on the context: pcscd gone, or something odd for
    // which a fresh context (after a growing pause, so it cannot spin) is the
    // best cure; the readers are kept then, so only real changes are reported.
    void fail(LONG rv, int64_t t) {
        if (service_lost(rv)) {
            lost(rv, t);
            return;
        }
        release_context();
        nap(retry_ms);
        retry_ms = std::min(retry_ms * 2, kRetryMaxMs);
    }

    void run() noexcept {
        try {
            loop();
        } catch (...) {
            // Out of memory or the like: end the thread, stop() still works.
        }
        release_context();
        std::lock_guard lk(mu);
        done = true;
        cv.notify_all();
    }
};

PcscWatch::PcscWatch(Sink sink) : impl_(std::make_unique<Impl>(std::move(sink))) {}

PcscWatch::~PcscWatch() { stop(); }

void PcscWatch::start() {
    Impl& m = *impl_;
    if (m.thread.joinable()) return;
    m.stopping = m.done = m.up = m.down_reported = false;
    m.retry_ms = kRetryFirstMs;
    m.woken_by = "start";
    m.woken_backoff_ms = 0;
    m.stop_cause = "";
    m.last_wait_rv = SCARD_S_SUCCESS;
    m.readers.clear();
    m.pnp_state = SCARD_STATE_UNAWARE;
    m.wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    int err = errno;
    if (m.wake_fd >= 0) {
        try {
            m.thread = std::thread([&m] { m.run(); });
            return;
        } catch (const std::system_error& e) {
            err = e.code().value();
        }
        close(m.wake_fd);
        m.wake_fd = -1;
    }
    // Reported, not thrown: the daemon shows `down` messages to the user.
    m.emit(Kind::down, now_ms(), {}, {}, 0,
           std::string("cannot start the PC/SC watcher: ") + std::strerror(err));
}

const char* PcscWatch::stopped_by() const { return impl_->stop_cause; }

void PcscWatch::stop() {
    Impl& m = *impl_;
    if (!m.thread.joinable()) return;
    if (std::this_thread::get_id() == m.thread.get_id()) {
        // From the sink: the thread cannot join itself; it ends after the sink
        // returns and a later stop() (or the destructor) joins it.
        std::lock_guard lk(m.mu);
        m.stopping = true;
        return;
    }
    {
        std::unique_lock lk(m.mu);
        m.stopping = true;
        const uint64_t one = 1;
        [[maybe_unused]] ssize_t n = write(m.wake_fd, &one, sizeof one);
        while (!m.done) {
            if (m.have_ctx) SCardCancel(m.ctx);
            m.cv.wait_for(lk, kCancelRepeat);
        }
    }
    m.thread.join();
    close(m.wake_fd);
    m.wake_fd = -1;
}

} // namespace ukey::daemon
