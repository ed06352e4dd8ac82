// Racing wrong PINs: 8 processes x 4 threads, started at once through a
// pipe, each thread trying 2 wrong user PINs on the same SoftHSM2 Key
// (through libukey-pkcs11.so and the spy). Exactly 6 PINs may reach the
// token (the spy counts them) and exactly 6 calls may answer
// CKR_PIN_INCORRECT; the 58 others must be CKR_PIN_LOCKED. 20 rounds, the
// Key unlocked by the SO (C_InitPIN) between them, without a single miss.
#include "pin_common.h"

#include <atomic>
#include <cstdio>
#include <thread>

using namespace pintest;
using namespace ukeytest;
using namespace std::chrono_literals;

namespace {

constexpr int kTriesPerThread = 2;
constexpr int kRounds = 20;

struct Tally {
    int incorrect = 0, locked = 0, other = 0;
    std::string others; // the unexpected answers
};

// One child: its own C_Initialize, one session per thread, all threads
// released by the gate. Reports "incorrect locked other [names]".
std::string racing_child(SpyKey& k, int threads, StartGate& gate, const ReadyPipe& ready)
{
    gate.child_side();
    check(k.module().initialize(), "C_Initialize in child");
    const CK_SLOT_ID slot = slot_by_label(k.fl(), k.label());
    std::vector<CK_SESSION_HANDLE> sessions;
    for (int t = 0; t < threads; ++t)
        sessions.push_back(open_session(k.fl(), slot, true));
    std::atomic<int> incorrect{0}, locked{0}, other{0};
    std::string others;
    std::mutex others_mu;
    std::vector<std::thread> workers;
    for (int t = 0; t < threads; ++t) {
        workers.emplace_back([&, t] {
            gate.wait();
            for (int i = 0; i < kTriesPerThread; ++i) {
                const CK_RV rv = try_login(k.fl(), sessions[t], CKU_USER, "wrong-" + std::to_string(t));
                if (rv == CKR_PIN_INCORRECT) {
                    ++incorrect;
                } else if (rv == CKR_PIN_LOCKED) {
                    ++locked;
                } else {
                    ++other;
                    std::lock_guard<std::mutex> g(others_mu);
                    others.append(" ").append(rv_name(rv));
                }
            }
        });
    }
    ready.signal();
    for (auto& th : workers)
        th.join();
    return std::to_string(incorrect.load()) + " " + std::to_string(locked.load()) + " " +
           std::to_string(other.load()) + others;
}

// kRounds rounds of `processes` x `threads` x kTriesPerThread wrong PINs.
void race(int processes, int threads, SpyTarget target = SpyTarget::softhsm)
{
    const int attempts = processes * threads * kTriesPerThread;
    SpyKey k({}, target);
    int misses = 0, reached_total = 0, judged_total = 0, other_total = 0;
    const auto t0 = std::chrono::steady_clock::now();
    for (int round = 1; round <= kRounds; ++round) {
        SCOPED_TRACE("round " + std::to_string(round));
        // Reset: the SO unlocks the Key; the module is finalised again
        // before fork(), so each child starts SoftHSM2 afresh.
        k.start();
        if (round > 1)
            k.unlock();
        ASSERT_EQ("user 6/6, so 6/6, flags 0x1", describe(k.status()));
        k.stop();
        fs::remove(k.spy_log());

        StartGate gate;
        ReadyPipe ready;
        std::vector<std::unique_ptr<Child>> kids;
        for (int p = 0; p < processes; ++p)
            kids.push_back(std::make_unique<Child>([&] { return racing_child(k, threads, gate, ready); }));
        ASSERT_TRUE(ready.wait_for(processes, 60s)) << "children did not get ready";
        gate.release(); // all threads of all children go

        Tally total;
        for (auto& c : kids) {
            const std::string out = c->wait(60s);
            ASSERT_TRUE(c->exited_ok()) << c->status() << ": " << out;
            int inc = 0, lck = 0, oth = 0, used = 0;
            ASSERT_EQ(3, std::sscanf(out.c_str(), "%d %d %d%n", &inc, &lck, &oth, &used)) << out;
            total.incorrect += inc;
            total.locked += lck;
            total.other += oth;
            total.others += out.substr(static_cast<size_t>(used));
        }
        const int reached = k.user_logins();
        const int judged = spy_results(k.spy_log(), CKR_PIN_INCORRECT); // SoftHSM2 said "wrong PIN"
        k.start();
        const UKEY_PIN_STATUS st = k.status();
        k.stop();
        reached_total += reached;
        judged_total += judged;
        other_total += total.other;

        const bool exact = total.other == 0 && reached == 6 && st.userTriesLeft == 0 &&
                           (target == SpyTarget::fakecard ||
                            (total.incorrect == 6 && total.locked == attempts - 6 && judged == 6));
        misses += exact ? 0 : 1;
        if (target == SpyTarget::softhsm) {
            EXPECT_EQ(6, total.incorrect);
            EXPECT_EQ(attempts - 6, total.locked);
        } else {
            // The card answers the 4th-6th PIN with its own CKR_PIN_LOCKED.
            EXPECT_EQ(3, total.incorrect);
            EXPECT_EQ(attempts - 3, total.locked);
        }
        EXPECT_EQ(0, total.other) << "unexpected answers:" << total.others;
        EXPECT_EQ(6, reached) << "PINs that reached SoftHSM2; spy log:\n" << read_file(k.spy_log());
        if (target == SpyTarget::softhsm) { // the fake card locks itself after 3
            EXPECT_EQ(6, judged) << "PINs SoftHSM2 answered CKR_PIN_INCORRECT";
        }
        EXPECT_EQ(0UL, st.userTriesLeft) << describe(st);
        // One Key, one record: a try charged to a record of another identity
        // (e.g. the Key seen with a blank serial) escapes the Key's limit.
        std::string files;
        for (const auto& f : pin_dir_entries(k.env()))
            files.append(" ").append(f.filename().string());
        EXPECT_EQ(1U, pin_dir_entries(k.env()).size()) << "state files:" << files;
    }
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("[race] %d rounds x %d processes x %d threads x %d tries: %d miss(es); PINs reached SoftHSM2 "
                "%d (expected %d), judged wrong %d, other answers %d; %.1f s\n",
                kRounds, processes, threads, kTriesPerThread, misses, reached_total, 6 * kRounds, judged_total,
                other_total, secs);
    EXPECT_EQ(0, misses);
}

// The case of the issue: 8 processes x 4 threads.
TEST(Race, EightProcessesTimesFourThreads)
{
    race(8, 4);
}

// Threads only (SoftHSM2 serialises logins inside one process): isolates
// ukey's own counter from SoftHSM2's cross-process token-file races.
TEST(Race, OneProcessTimesThirtyTwoThreads)
{
    race(1, 32);
}

// The same race in front of a backend that never fails (the fake card,
// which serialises PIN checks across processes itself): isolates ukey's
// cross-process counter from SoftHSM2's CKR_GENERAL_ERROR answers.
TEST(Race, EightProcessesTimesFourThreadsOnAFakeCard)
{
    race(8, 4, SpyTarget::fakecard);
}

} // namespace
