// watch_driver: runs ukeyd's PcscWatch (tools/ukeyd/pcsc_watch.h) on its own
// and prints each event as one line on stdout, for tests/pcsc/watch.sh:
//
//   <time_ms> up woken-by=start|reconnect|inotify|back-off[ backoff-ms=<n>]
//   <time_ms> down code=0x8010001D msg=<plain words>
//   <time_ms> reader-added|reader-removed|reader-unusable <reader>
//   <time_ms> card-inserted <reader> atr=<HEX>
//   <time_ms> card-removed <reader>
//   <now_ms> cancelled latency-ms=<n> by=<how>   SIGTERM/SIGINT: how long
//       stop() took, and how the thread saw it (PcscWatch::stopped_by)
//
// The main thread waits on a signalfd, the way the daemon's epoll loop will,
// and calls stop() from there.
//
//   watch_driver --churn N   no events printed; N times start(), a pause of
//       0-19 ms, stop(), so that stop() lands in every phase of the thread
//       (establishing, listing, entering or inside SCardGetStatusChange,
//       waiting for pcscd). Also stop() without start(), start() twice, stop()
//       twice. Prints "churn cycles=N max-stop-ms=M median-stop-ms=D
//       by: cancel=A wake=B flag=C timer=E"; exit 1 if a stop() took 5 s or
//       more (a stop() that nothing wakes waits for ever; a busy machine
//       delays one by milliseconds, rarely by a second) or if the thread
//       ever saw a stop() only when a timer ran out (timer > 0).

#include "pcsc_watch.h"

#include <signal.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <thread>
#include <vector>

namespace {

int64_t now_ms() {
    timespec ts{};
    clock_gettime(CLOCK_REALTIME, &ts);
    return int64_t{ts.tv_sec} * 1000 + ts.tv_nsec / 1000000;
}

void print(const ukey::daemon::PcscEvent& e) {
    using K = ukey::daemon::PcscEvent::Kind;
    std::printf("%" PRId64 " %s", e.time_ms, ukey::daemon::to_string(e.kind));
    if (!e.reader.empty()) std::printf(" %s", e.reader.c_str());
    if (e.kind == K::card_inserted) std::printf(" atr=%s", e.atr.c_str());
    if (e.kind == K::down)
        std::printf(" code=0x%08lX msg=%s", static_cast<unsigned long>(e.code), e.message.c_str());
    if (e.kind == K::up) {
        std::printf(" woken-by=%s", e.woken_by);
        if (e.backoff_ms) std::printf(" backoff-ms=%d", e.backoff_ms);
    }
    std::putchar('\n');
    std::fflush(stdout);
}

// A stop() slower than this is one that nothing woke (it would wait for
// ever); scheduling on a busy machine costs milliseconds, rarely a second.
constexpr int64_t kStopBoundMs = 5000;

int churn(int cycles) {
    std::vector<int64_t> took;
    std::map<std::string, int> by{{"cancel", 0}, {"wake", 0}, {"flag", 0}, {"timer", 0}};
    {
        ukey::daemon::PcscWatch idle([](ukey::daemon::PcscEvent) {});
        idle.stop(); // never started
    }
    ukey::daemon::PcscWatch w([](ukey::daemon::PcscEvent) {});
    for (int i = 0; i < cycles; ++i) {
        w.start();
        if (i % 7 == 0) w.start(); // a second start() does nothing
        std::this_thread::sleep_for(std::chrono::milliseconds(i % 20));
        const int64_t t0 = now_ms();
        w.stop();
        took.push_back(now_ms() - t0);
        ++by[w.stopped_by()];
        if (i % 5 == 0) w.stop(); // and a second stop() neither
    }
    std::sort(took.begin(), took.end());
    const int64_t worst = took.empty() ? 0 : took.back();
    const int64_t median = took.empty() ? 0 : took[took.size() / 2];
    std::printf("churn cycles=%d max-stop-ms=%" PRId64 " median-stop-ms=%" PRId64 " by:", cycles, worst, median);
    for (const auto& [how, n] : by) std::printf(" %s=%d", how.empty() ? "none" : how.c_str(), n);
    std::putchar('\n');
    return worst < kStopBoundMs && by["timer"] == 0 && !by.count("") ? 0 : 1;
}

} // namespace

int main(int argc, char** argv) {
    if (argc == 3 && std::strcmp(argv[1], "--churn") == 0) return churn(std::atoi(argv[2]));
    if (argc != 1) {
        std::fprintf(stderr, "usage: watch_driver [--churn N]\n");
        return 2;
    }

    // Blocked before any thread exists, so only the signalfd sees them.
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    if (sigprocmask(SIG_BLOCK, &set, nullptr) != 0) return 1;
    int sfd = signalfd(-1, &set, SFD_CLOEXEC);
    if (sfd < 0) {
        std::perror("watch_driver: signalfd");
        return 1;
    }

    ukey::daemon::PcscWatch watch(print);
    watch.start();
    signalfd_siginfo si;
    while (read(sfd, &si, sizeof si) < 0 && errno == EINTR) {
    }
    const int64_t t0 = now_ms();
    watch.stop();
    const int64_t t1 = now_ms();
    std::printf("%" PRId64 " cancelled latency-ms=%" PRId64 " by=%s\n", t1, t1 - t0,
                *watch.stopped_by() ? watch.stopped_by() : "none");
    std::fflush(stdout);
    close(sfd);
    return 0;
}
