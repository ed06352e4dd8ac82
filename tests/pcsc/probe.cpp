// probe: a tiny pcsc-lite event monitor for the test harness (tests/pcsc).
//
// It does what the ukey daemon will do: block in SCardGetStatusChange on every
// reader plus "\\?PnP?\Notification", and report what happens as one line per
// event on stdout:
//
//   <epoch-ms> pcscd-up
//   <epoch-ms> reader-added <name>
//   <epoch-ms> card-inserted <name> atr=<hex>
//   <epoch-ms> card-removed <name>
//   <epoch-ms> reader-removed <name>
//   <epoch-ms> pcscd-gone rv=<pcsc error>
//   <epoch-ms> cancelled latency-ms=<n>          (SIGTERM/SIGINT, then exit 0)
//   <epoch-ms> error <function> rv=<pcsc error>
//   <epoch-ms> reader-unusable <name>   listed by pcscd but without any state
//                                       (driver failed to load); ignored since
//   <epoch-ms> warning spurious-wakeups the wait keeps returning nothing new;
//                                       the probe naps --retry-ms between waits
//
// When pcscd goes away it releases the context and re-establishes one every
// --retry-ms until pcscd is back (then "pcscd-up" and the readers/cards again).
// SIGTERM/SIGINT are handled by a thread that calls SCardCancel() on the
// context, which is how the daemon will wake its blocked wait.
//
//   probe [--timeout-ms N] [--retry-ms N] [--debug]   monitor (default);
//                                           --debug: every wait result on stderr
//   probe --list                            list readers and their state once;
//                                           exit 0 if pcscd answered, 3 if not
//   probe --transmit READER HEXAPDU         connect to the card in READER, send
//                                           one APDU, print "response <hex>"
//
// The pcscd socket is taken from PCSCLITE_CSOCK_NAME (read by libpcsclite).

#include <PCSC/winscard.h>
#include <PCSC/wintypes.h>
#include <PCSC/pcsclite.h>

#include "pcsc_common.h" // tools/ukeyd: what ukeyd's watcher shares with this model

#include <pthread.h>
#include <signal.h>

#include <chrono>
#include <condition_variable>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

long now_ms() {
    using namespace std::chrono;
    return static_cast<long>(
        duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count());
}

[[gnu::format(printf, 1, 2)]] void event(const char* fmt, ...) {
    std::printf("%ld ", now_ms());
    va_list ap;
    va_start(ap, fmt);
    std::vprintf(fmt, ap);
    va_end(ap);
    std::putchar('\n');
    std::fflush(stdout);
}

std::string rvname(LONG rv) {
    char buf[128];
    std::snprintf(buf, sizeof buf, "0x%08lX(%s)", static_cast<unsigned long>(rv),
                  pcsc_stringify_error(rv));
    // no spaces in the token, so the line stays easy to parse
    for (char* p = buf; *p; ++p)
        if (*p == ' ') *p = '_';
    return buf;
}

using ukey::pcsc::hex;
using ukey::pcsc::service_lost;

// --- shared between the main thread and the signal thread -----------------
std::mutex g_mu;
std::condition_variable g_cv;
bool g_quit = false;
long g_quit_at = 0;
SCARDCONTEXT g_ctx = 0;
bool g_have_ctx = false;
bool g_debug = false;  // --debug: every SCardGetStatusChange result on stderr

// Sleeps ms milliseconds unless asked to quit; returns false when quitting.
bool nap(int ms) {
    std::unique_lock lk(g_mu);
    g_cv.wait_for(lk, std::chrono::milliseconds(ms), [] { return g_quit; });
    return !g_quit;
}

bool quitting() {
    std::lock_guard lk(g_mu);
    return g_quit;
}

void signal_thread(sigset_t set) {
    int sig = 0;
    sigwait(&set, &sig);
    std::lock_guard lk(g_mu);
    g_quit = true;
    g_quit_at = now_ms();
    if (g_have_ctx) SCardCancel(g_ctx);  // wakes SCardGetStatusChange
    g_cv.notify_all();
}

// --- reader list ------------------------------------------------------------
LONG list_readers(SCARDCONTEXT ctx, std::vector<std::string>& out) {
    out.clear();
    DWORD len = 0;
    LONG rv = SCardListReaders(ctx, nullptr, nullptr, &len);
    if (rv == SCARD_E_NO_READERS_AVAILABLE) return SCARD_S_SUCCESS;
    if (rv != SCARD_S_SUCCESS) return rv;
    std::vector<char> buf(len);
    rv = SCardListReaders(ctx, nullptr, buf.data(), &len);
    if (rv == SCARD_E_NO_READERS_AVAILABLE) return SCARD_S_SUCCESS;
    if (rv != SCARD_S_SUCCESS) return rv;
    for (const char* p = buf.data(); p < buf.data() + len && *p; p += std::strlen(p) + 1)
        out.emplace_back(p);
    return SCARD_S_SUCCESS;
}

using ukey::pcsc::Reader;

// A context and a connection to the card in READER (share mode `share`);
// 0, or the exit code after saying why on stderr.
int connect_card(const char* reader, DWORD share, SCARDCONTEXT& ctx, SCARDHANDLE& card, DWORD& proto) {
    LONG rv = SCardEstablishContext(SCARD_SCOPE_SYSTEM, nullptr, nullptr, &ctx);
    if (rv != SCARD_S_SUCCESS) {
        std::fprintf(stderr, "probe: SCardEstablishContext: %s\n", rvname(rv).c_str());
        return 3;
    }
    rv = SCardConnect(ctx, reader, share, SCARD_PROTOCOL_T0 | SCARD_PROTOCOL_T1, &card, &proto);
    if (rv != SCARD_S_SUCCESS) {
        std::fprintf(stderr, "probe: SCardConnect: %s\n", rvname(rv).c_str());
        SCardReleaseContext(ctx);
        return 1;
    }
    return 0;
}

// Connects to the card in READER exclusively, prints "held" and keeps it
// until SIGTERM or SECONDS pass (the other program of ukey doctor's
// P11.reader-held-exclusively).
int run_hold_exclusive(const char* reader, int seconds) {
    SCARDCONTEXT ctx;
    SCARDHANDLE card;
    DWORD proto = 0;
    if (int rc = connect_card(reader, SCARD_SHARE_EXCLUSIVE, ctx, card, proto))
        return rc;
    std::printf("held\n");
    std::fflush(stdout);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    timespec limit{seconds, 0};
    sigtimedwait(&set, nullptr, &limit);
    SCardDisconnect(card, SCARD_LEAVE_CARD);
    SCardReleaseContext(ctx);
    return 0;
}

int run_list() {
    SCARDCONTEXT ctx;
    LONG rv = SCardEstablishContext(SCARD_SCOPE_SYSTEM, nullptr, nullptr, &ctx);
    if (rv != SCARD_S_SUCCESS) {
        std::fprintf(stderr, "probe: SCardEstablishContext: %s\n", rvname(rv).c_str());
        return 3;
    }
    std::vector<std::string> names;
    rv = list_readers(ctx, names);
    if (rv != SCARD_S_SUCCESS) {
        std::fprintf(stderr, "probe: SCardListReaders: %s\n", rvname(rv).c_str());
        SCardReleaseContext(ctx);
        return 3;
    }
    std::vector<SCARD_READERSTATE> st(names.size());
    for (std::size_t i = 0; i < names.size(); ++i) {
        st[i].szReader = names[i].c_str();
        st[i].dwCurrentState = SCARD_STATE_UNAWARE;
    }
    if (!st.empty()) {
        rv = SCardGetStatusChange(ctx, 0, st.data(), static_cast<DWORD>(st.size()));
        if (rv != SCARD_S_SUCCESS && rv != SCARD_E_TIMEOUT) {
            std::fprintf(stderr, "probe: SCardGetStatusChange: %s\n", rvname(rv).c_str());
            SCardReleaseContext(ctx);
            return 3;
        }
    }
    for (auto& s : st) {
        bool present = s.dwEventState & SCARD_STATE_PRESENT;
        std::printf("reader %s %s%s%s\n", s.szReader, present ? "present" : "empty",
                    present ? " atr=" : "",
                    present ? hex(s.rgbAtr, s.cbAtr).c_str() : "");
    }
    SCardReleaseContext(ctx);
    return 0;
}

int run_transmit(const char* reader, const char* apdu_hex) {
    std::vector<BYTE> apdu;
    for (const char* p = apdu_hex; p[0] && p[1]; p += 2) {
        char b[3] = {p[0], p[1], 0};
        char* end = nullptr;
        unsigned long v = std::strtoul(b, &end, 16);
        if (*end) {
            std::fprintf(stderr, "probe: bad hex APDU\n");
            return 2;
        }
        apdu.push_back(static_cast<BYTE>(v));
    }
    SCARDCONTEXT ctx;
    SCARDHANDLE card;
    DWORD proto = 0;
    if (int rc = connect_card(reader, SCARD_SHARE_SHARED, ctx, card, proto))
        return rc;
    const SCARD_IO_REQUEST* pci = proto == SCARD_PROTOCOL_T0 ? SCARD_PCI_T0 : SCARD_PCI_T1;
    BYTE resp[258];
    DWORD resp_len = sizeof resp;
    LONG rv = SCardTransmit(card, pci, apdu.data(), static_cast<DWORD>(apdu.size()), nullptr, resp,
                       &resp_len);
    int ret = 0;
    if (rv != SCARD_S_SUCCESS) {
        std::fprintf(stderr, "probe: SCardTransmit: %s\n", rvname(rv).c_str());
        ret = 1;
    } else {
        std::printf("protocol T=%d response %s\n", proto == SCARD_PROTOCOL_T0 ? 0 : 1,
                    hex(resp, resp_len).c_str());
    }
    SCardDisconnect(card, SCARD_LEAVE_CARD);
    SCardReleaseContext(ctx);
    return ret;
}

int run_monitor(DWORD timeout_ms, int retry_ms) {
    std::map<std::string, Reader> readers;
    DWORD pnp_state = SCARD_STATE_UNAWARE;
    bool up = false;
    int idle_wakeups = 0;

    auto forget_all = [&] {
        for (auto& [name, r] : readers) {
            if (r.present) event("card-removed %s", name.c_str());
            event("reader-removed %s", name.c_str());
        }
        readers.clear();
        pnp_state = SCARD_STATE_UNAWARE;
    };
    auto drop_context = [&](const char* why, LONG rv) {
        event("%s rv=%s", why, rvname(rv).c_str());
        forget_all();
        std::lock_guard lk(g_mu);
        if (g_have_ctx) SCardReleaseContext(g_ctx);
        g_have_ctx = false;
        up = false;
    };
    // Re-reads the reader list; returns false if the service is lost.
    auto refresh = [&]() -> bool {
        std::vector<std::string> names;
        LONG rv = list_readers(g_ctx, names);
        if (rv != SCARD_S_SUCCESS) {
            if (service_lost(rv)) {
                drop_context("pcscd-gone", rv);
                return false;
            }
            event("error SCardListReaders rv=%s", rvname(rv).c_str());
            return true;
        }
        for (auto it = readers.begin(); it != readers.end();) {
            bool still = false;
            for (auto& n : names) still = still || n == it->first;
            if (still) { ++it; continue; }
            if (it->second.present) event("card-removed %s", it->first.c_str());
            event("reader-removed %s", it->first.c_str());
            it = readers.erase(it);
        }
        for (auto& n : names) {
            if (readers.count(n)) continue;
            readers[n] = Reader{};
            event("reader-added %s", n.c_str());
        }
        return true;
    };

    while (!quitting()) {
        if (!up) {
            SCARDCONTEXT ctx;
            LONG rv = SCardEstablishContext(SCARD_SCOPE_SYSTEM, nullptr, nullptr, &ctx);
            if (rv != SCARD_S_SUCCESS) {
                if (!nap(retry_ms)) break;
                continue;
            }
            {
                std::lock_guard lk(g_mu);
                g_ctx = ctx;
                g_have_ctx = true;
            }
            up = true;
            event("pcscd-up");
            if (!refresh()) continue;
        }

        std::vector<SCARD_READERSTATE> st = ukey::pcsc::wait_states(pnp_state, readers);
        if (quitting()) break;
        LONG rv = SCardGetStatusChange(g_ctx, timeout_ms, st.data(),
                                       static_cast<DWORD>(st.size()));
        if (g_debug) {
            std::fprintf(stderr, "%ld SCardGetStatusChange rv=%s\n", now_ms(), rvname(rv).c_str());
            for (auto& s : st)
                std::fprintf(stderr, "  %s current=0x%08lX event=0x%08lX\n", s.szReader,
                             static_cast<unsigned long>(s.dwCurrentState),
                             static_cast<unsigned long>(s.dwEventState));
        }
        if (rv == SCARD_E_CANCELLED) {
            if (quitting()) break;
            continue;
        }
        if (rv == SCARD_E_TIMEOUT) {
            // Belt and braces: also catch reader changes we might have missed.
            refresh();
            continue;
        }
        if (rv == SCARD_E_UNKNOWN_READER) {
            refresh();
            continue;
        }
        if (rv != SCARD_S_SUCCESS) {
            if (service_lost(rv)) drop_context("pcscd-gone", rv);
            else {
                event("error SCardGetStatusChange rv=%s", rvname(rv).c_str());
                if (!nap(retry_ms)) break;
            }
            continue;
        }

        bool news = false;  // did this wake-up tell us anything?
        bool reader_list_changed = ukey::pcsc::list_changed(st[0], pnp_state, news);
        std::size_t i = 1;
        for (auto& [name, r] : readers) {
            const SCARD_READERSTATE& s = st[i++];
            if (!(s.dwEventState & SCARD_STATE_CHANGED)) continue;
            DWORD ns = s.dwEventState & ~SCARD_STATE_CHANGED;
            news = news || ns != r.state;
            r.state = ns;
            if (ns == 0) {
                // pcscd 1.9.9 keeps listing a reader whose driver failed to
                // load, with no state bits at all: asked with UNAWARE (0) it
                // answers "changed" at once, forever. Ignore that reader.
                r.unusable = true;
                event("reader-unusable %s", name.c_str());
                continue;
            }
            if (s.dwEventState & (SCARD_STATE_UNKNOWN | SCARD_STATE_UNAVAILABLE)) {
                reader_list_changed = true;
                continue;
            }
            bool present = s.dwEventState & SCARD_STATE_PRESENT;
            if (present && !r.present)
                event("card-inserted %s atr=%s", name.c_str(), hex(s.rgbAtr, s.cbAtr).c_str());
            else if (!present && r.present)
                event("card-removed %s", name.c_str());
            r.present = present;
        }
        if (reader_list_changed) refresh();
        // Safety net: never spin on a wait that keeps returning nothing new.
        if (news) {
            idle_wakeups = 0;
        } else if (++idle_wakeups >= 3) {
            if (idle_wakeups == 3) event("warning spurious-wakeups");
            if (!nap(retry_ms)) break;
        }
    }

    long latency = -1;
    {
        std::lock_guard lk(g_mu);
        if (g_quit_at) latency = now_ms() - g_quit_at;
        if (g_have_ctx) SCardReleaseContext(g_ctx);
        g_have_ctx = false;
    }
    event("cancelled latency-ms=%ld", latency);
    return 0;
}

void usage() {
    std::fprintf(stderr,
                 "usage: probe [--timeout-ms N] [--retry-ms N] [--debug]   monitor\n"
                 "       probe --list                            list readers once\n"
                 "       probe --transmit READER HEXAPDU         send one APDU\n"
                 "       probe --hold-exclusive READER SECONDS   hold the card exclusively\n");
}

}  // namespace

int main(int argc, char** argv) {
    bool list = false;
    DWORD timeout_ms = 5000;
    int retry_ms = 100;
    for (int i = 1; i < argc; ++i) {
        std::string_view a = argv[i];
        if (a == "--list") {
            list = true;
        } else if (a == "--hold-exclusive" && i + 2 < argc) {
            return run_hold_exclusive(argv[i + 1], std::atoi(argv[i + 2]));
        } else if (a == "--transmit" && i + 2 < argc) {
            return run_transmit(argv[i + 1], argv[i + 2]);
        } else if (a == "--timeout-ms" && i + 1 < argc) {
            timeout_ms = static_cast<DWORD>(std::strtoul(argv[++i], nullptr, 10));
        } else if (a == "--debug") {
            g_debug = true;
        } else if (a == "--retry-ms" && i + 1 < argc) {
            retry_ms = std::atoi(argv[++i]);
        } else {
            usage();
            return 2;
        }
    }
    if (list) return run_list();

    // All threads (including libpcsclite's, if any) inherit the blocked mask;
    // only the signal thread receives SIGTERM/SIGINT, via sigwait().
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    // run_monitor only returns once the signal thread has set g_quit, so the
    // join is quick; joining (not detaching) keeps exit() from destroying
    // g_mu/g_cv under the feet of a still-running thread.
    std::thread sig(signal_thread, set);
    int rc = run_monitor(timeout_ms, retry_ms);
    sig.join();
    return rc;
}
