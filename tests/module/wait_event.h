// C_WaitForSlotEvent (PKCS#11 v2.40 §5.5) on ukey's aggregated slot list:
// what its two test binaries share (one binary per concern, so that they
// run in parallel):
//   wait_event_test         the module's own means: arguments, CKF_DONT_BLOCK,
//                           blocking callers, C_Finalize, application mutexes
//   wait_event_daemon_test  the ukeyd protocol, against peers the real daemon
//                           cannot be made to be
//
// A SoftHSM2 backend always shows one empty (uninitialised) slot; C_InitToken
// on it is an in-process slot event the module must see by its own means
// (no daemon, or a daemon that cannot see inside this process). Every
// ukey.conf names a private socket path, so a ukeyd running on the machine
// is never reached.
#pragma once

#include "common.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

namespace waitevent {

using namespace ukeytest;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

inline double seconds_since(Clock::time_point t)
{
    return std::chrono::duration<double>(Clock::now() - t).count();
}

// Bounds. Every wait below ends as soon as its condition holds; a bound
// only tells "never" (a waiter never woken, an event never seen) from a
// busy machine, so it is generous. Measured times are printed.
//
// How often the module's own rescan looks at the slot list while a caller
// blocks (token/slot_events.h: own_interval, own_interval_with_daemon): a
// change made in this process is seen within one interval.
inline constexpr std::chrono::milliseconds kOwnRescan = 1s;
inline constexpr std::chrono::milliseconds kOwnRescanWithDaemon = 5s;
// How soon it tries a daemon again after a failed or broken connection
// (token/slot_events.h: reconnect_interval).
inline constexpr std::chrono::milliseconds kReconnect = 3s;
// Scheduling delays, ASan, SoftHSM2 initialised again: added to an interval.
inline constexpr std::chrono::milliseconds kSlack = 10s;
// C_Finalize wakes every blocked caller at once (milliseconds).
inline constexpr std::chrono::milliseconds kWakeBound = 10s;

// A blocking C_WaitForSlotEvent on its own thread. Destroyed while still
// blocked (a failed test), it C_Finalize's the module to get its thread back.
class Waiter {
public:
    explicit Waiter(Module& m)
        : module_(m), future_(std::async(std::launch::async, [fl = m.fl(), this] {
              CK_SLOT_ID slot = 0;
              CK_RV rv = fl->C_WaitForSlotEvent(0, &slot, nullptr);
              slot_ = slot;
              return rv;
          }))
    {
    }
    ~Waiter()
    {
        if (!rv_ && future_.wait_for(0ms) != std::future_status::ready && module_.initialized())
            module_.finalize();
    }
    // The answer, if it came within `most`.
    std::optional<CK_RV> result(std::chrono::milliseconds most)
    {
        if (!rv_ && future_.wait_for(most) == std::future_status::ready)
            rv_ = future_.get();
        return rv_;
    }
    CK_SLOT_ID slot() const { return slot_; }

private:
    Module& module_;
    std::atomic<CK_SLOT_ID> slot_{0};
    std::optional<CK_RV> rv_;
    std::future<CK_RV> future_;
};

// Waits up to `most` for cond().
inline bool eventually(std::chrono::milliseconds most, const std::function<bool()>& cond)
{
    const auto until = Clock::now() + most;
    while (Clock::now() < until) {
        if (cond())
            return true;
        std::this_thread::sleep_for(20ms);
    }
    return cond();
}

class WaitEvent : public modtest::ModuleTest<> {
protected:
    void SetUp() override
    {
        auto env = std::make_unique<TestEnv>();
        socket_ = env->dir() / "ukeyd.sock";
        env->write_ukey_conf(env->ukey_conf_text() + "\n[daemon]\nsocket = \"" + socket_.string() + "\"\n");
        load(std::move(env));
    }
    void init() { ASSERT_RV(CKR_OK, module_->initialize()); }

    // SoftHSM2's free slot: a token that is present and not initialised.
    CK_SLOT_ID empty_slot()
    {
        for (CK_SLOT_ID s : slot_list(fl(), true))
            if (!(token_info(fl(), s).flags & CKF_TOKEN_INITIALIZED))
                return s;
        throw std::runtime_error("no empty SoftHSM2 slot");
    }
    // C_InitToken through ukey on the free slot; the Key's (new) slot ID.
    CK_SLOT_ID init_token(const std::string& label)
    {
        CK_SLOT_ID slot = empty_slot();
        std::string pin = modtest::kDefaultToken.so_pin;
        std::string padded = padded_label(label);
        check(fl()->C_InitToken(slot, reinterpret_cast<CK_UTF8CHAR_PTR>(pin.data()), pin.size(),
                                reinterpret_cast<CK_UTF8CHAR_PTR>(padded.data())),
              "C_InitToken");
        return slot_by_label(fl(), label);
    }
    // A token made by another process (softhsm2-util on the free slot), as
    // ukeyd would then report it: this process's SoftHSM2 shows it only
    // once initialised again.
    void other_process_token(const std::string& label)
    {
        const std::string cmd = "SOFTHSM2_CONF='" + env_->softhsm_conf(0).string() +
                                "' softhsm2-util --init-token --free --label '" + label + "' --so-pin '" +
                                modtest::kDefaultToken.so_pin + "' --pin '" + modtest::kDefaultToken.user_pin +
                                "' >/dev/null";
        ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
    }
    // The slot holding the token labelled `label`, or 0.
    CK_SLOT_ID slot_labelled(const std::string& label)
    {
        for (CK_SLOT_ID s : slot_list(fl(), true)) {
            const CK_TOKEN_INFO ti = token_info(fl(), s);
            if (std::string(reinterpret_cast<const char*>(ti.label), sizeof ti.label) == padded_label(label))
                return s;
        }
        return 0;
    }
    // Every slot an event named is one C_GetSlotInfo knows.
    void expect_known(const std::vector<CK_SLOT_ID>& slots)
    {
        for (CK_SLOT_ID s : slots) {
            CK_SLOT_INFO info{};
            EXPECT_RV(CKR_OK, fl()->C_GetSlotInfo(s, &info)) << "an event named slot " << s;
        }
    }
    // Every event CKF_DONT_BLOCK has now, in order.
    std::vector<CK_SLOT_ID> drain()
    {
        std::vector<CK_SLOT_ID> out;
        for (int i = 0; i < 20; ++i) {
            CK_SLOT_ID s = 0;
            CK_RV rv = fl()->C_WaitForSlotEvent(CKF_DONT_BLOCK, &s, nullptr);
            if (rv == CKR_NO_EVENT)
                return out;
            EXPECT_RV(CKR_OK, rv);
            if (rv != CKR_OK)
                return out;
            out.push_back(s);
        }
        ADD_FAILURE() << "CKF_DONT_BLOCK never ran out of events";
        return out;
    }
    // A blocked waiter returns CKR_CRYPTOKI_NOT_INITIALIZED after C_Finalize
    // (at once; kWakeBound only catches a waiter never woken).
    void finalize_wakes(Waiter& w)
    {
        auto t = Clock::now();
        ASSERT_RV(CKR_OK, module_->finalize());
        auto rv = w.result(kWakeBound);
        ASSERT_TRUE(rv) << "C_WaitForSlotEvent still blocked " << kWakeBound.count() << " ms after C_Finalize";
        EXPECT_RV(CKR_CRYPTOKI_NOT_INITIALIZED, *rv);
        const double took = seconds_since(t);
        std::printf("C_Finalize + wake-up: %.3f s\n", took);
        EXPECT_LT(took, kWakeBound.count() / 1000.0) << "C_Finalize + wake-up took too long";
    }
    // Blocks, C_InitToken's on another thread: the Key's ID within `most`
    // of the token's creation (the rescan interval that applies + kSlack).
    void expect_init_token_seen(std::chrono::milliseconds most)
    {
        Waiter w(*module_);
        ASSERT_FALSE(w.result(300ms)) << "returned at once: " << rv_name(*w.result(0ms)) << " slot " << w.slot();
        CK_SLOT_ID key = 0;
        std::thread other([&] { key = init_token("fresh"); });
        other.join();
        auto t = Clock::now(); // the token exists: time from here
        auto rv = w.result(most);
        if (!rv) {
            finalize_wakes(w);
            FAIL() << "C_InitToken not seen within " << most.count() << " ms";
        }
        EXPECT_RV(CKR_OK, *rv);
        EXPECT_EQ(w.slot(), key) << "expected the new Key's slot ID first";
        const double took = seconds_since(t);
        std::printf("C_InitToken seen %.3f s after it returned (bound %.1f s)\n", took, most.count() / 1000.0);
        EXPECT_LT(took, most.count() / 1000.0);
    }

    std::filesystem::path socket_;
};

}  // namespace waitevent
