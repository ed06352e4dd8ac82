// watch_driver: runs ukeyd's PcscWatch (tools/ukeyd/pcsc_watch.h) on its own
// and prints each event as one line on stdout, for tests/pcsc/watch.sh:
//
//   <time_ms> up
//   <time_ms> down code=0x8010001D msg=<plain words>
//   <time_ms> reader-added|reader-removed|reader-unusable <reader>
//   <time_ms> card-inserted <reader> atr=<HEX>
//   <time_ms> card-removed <reader>
//   <now_ms> cancelled latency-ms=<n>   SIGTERM/SIGINT: how long stop() took
//
// The main thread waits on a signalfd, the way the daemon's epoll loop will,
// and calls stop() from there.
//
//   watch_driver --churn N   no events printed; N times start(), a pause of
//       0-19 ms, stop(), so that stop() lands in every phase of the thread
//       (establishing, listing, entering or inside SCardGetStatusChange,
//       waiting for pcscd). Also stop() without start(), start() twice, stop()
//       twice. Prints "churn cycles=N max-stop-ms=M"; exit 1 if a stop()
//       took 500 ms or more.

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
#include <thread>

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
    std::putchar('\n');
    std::fflush(stdout);
}

int churn(int cycles) {
    int64_t worst = 0;
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
        worst = std::max(worst, now_ms() - t0);
        if (i % 5 == 0) w.stop(); // and a second stop() neither
    }
    std::printf("churn cycles=%d max-stop-ms=%" PRId64 "\n", cycles, worst);
    return worst < 500 ? 0 : 1;
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
    std::printf("%" PRId64 " cancelled latency-ms=%" PRId64 "\n", t1, t1 - t0);
    std::fflush(stdout);
    close(sfd);
    return 0;
}
