// One measurement phase: a module from C_Initialize to C_Finalize, and the
// operations ukey-bench times in it.
#pragma once

#include "p11.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <exception>
#include <functional>
#include <latch>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace ukey_bench {

using Clock = std::chrono::steady_clock;

class Phase {
   public:
    explicit Phase(const Module& m) : m_(m) {
        initialize(m_);
        active_ = true;
        try {
            slot_ = find_bench_slot(m_);
            main_ = open_session(m_, slot_);
            login_user(m_, main_);
            priv_ = find_key(m_, main_, CKO_PRIVATE_KEY);
            pub_ = find_key(m_, main_, CKO_PUBLIC_KEY);
        } catch (...) {
            m_.fl->C_Finalize(nullptr);  // no destructor runs for a throwing constructor
            throw;
        }
    }
    ~Phase() {
        if (active_) m_.fl->C_Finalize(nullptr);  // error path only
    }
    Phase(const Phase&) = delete;
    Phase& operator=(const Phase&) = delete;

    void finish() {
        active_ = false;
        check(m_.fl->C_Finalize(nullptr), m_.role, "C_Finalize");
    }

    // RSA-2048 C_SignInit + C_Sign (CKM_SHA256_RSA_PKCS), one session per
    // thread, for `seconds`; returns signatures per second (all threads).
    double sign_throughput(unsigned nthreads, double seconds) {
        struct Worker {
            CK_SESSION_HANDLE session = CK_INVALID_HANDLE;
            CK_OBJECT_HANDLE key = CK_INVALID_HANDLE;
            double rate = 0;
        };
        std::vector<Worker> workers(nthreads);
        for (auto& w : workers) {
            w.session = open_session(m_, slot_);
            login_user(m_, w.session);
            w.key = find_key(m_, w.session, CKO_PRIVATE_KEY);
        }

        std::atomic<bool> stop{false};
        std::atomic<bool> failed{false};
        std::mutex err_mu;
        std::exception_ptr err;
        std::latch start(nthreads + 1);

        auto body = [&](Worker& w) {
            bool arrived = false;
            try {
                CK_MECHANISM mech{CKM_SHA256_RSA_PKCS, nullptr, 0};
                unsigned char data[32];
                std::memset(data, 0x5a, sizeof data);
                unsigned char sig[512];
                auto sign_once = [&] {
                    check(m_.fl->C_SignInit(w.session, &mech, w.key), m_.role, "C_SignInit");
                    CK_ULONG len = sizeof sig;
                    check(m_.fl->C_Sign(w.session, data, sizeof data, sig, &len), m_.role,
                          "C_Sign");
                    if (len != 256) {
                        throw Failure(m_.role + ": C_Sign returned " + std::to_string(len) +
                                      " bytes, expected 256");
                    }
                };
                sign_once();  // warm-up, outside the timed window
                arrived = true;
                start.arrive_and_wait();
                auto t0 = Clock::now();
                unsigned long ops = 0;
                while (!stop.load(std::memory_order_relaxed)) {
                    sign_once();
                    ++ops;
                }
                std::chrono::duration<double> dt = Clock::now() - t0;
                w.rate = ops / dt.count();
            } catch (...) {
                {
                    std::lock_guard lock(err_mu);
                    if (!err) err = std::current_exception();
                }
                failed = true;
                if (!arrived) start.count_down();  // so the main thread's wait cannot hang
            }
        };

        std::vector<std::thread> threads;
        threads.reserve(nthreads);
        for (auto& w : workers) threads.emplace_back(body, std::ref(w));
        start.arrive_and_wait();
        auto deadline = Clock::now() + std::chrono::duration<double>(seconds);
        while (!failed && Clock::now() < deadline) {
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        stop = true;
        for (auto& t : threads) t.join();
        if (err) std::rethrow_exception(err);

        double total = 0;
        for (auto& w : workers) {
            total += w.rate;
            check(m_.fl->C_CloseSession(w.session), m_.role, "C_CloseSession");
        }
        return total;
    }

    // Nanoseconds per call of `op`, one sample per batch.
    template <typename Op>
    std::vector<double> latency(unsigned long iterations, unsigned batches, Op op) {
        unsigned long per_batch = std::max(1UL, iterations / batches);
        for (unsigned long i = 0; i < std::min(per_batch, 2000UL); ++i) op();  // warm-up
        std::vector<double> samples;
        for (unsigned b = 0; b < batches; ++b) {
            auto t0 = Clock::now();
            for (unsigned long i = 0; i < per_batch; ++i) op();
            std::chrono::duration<double, std::nano> dt = Clock::now() - t0;
            samples.push_back(dt.count() / per_batch);
        }
        return samples;
    }

    std::vector<double> get_session_info(unsigned long iterations, unsigned batches) {
        return latency(iterations, batches, [&] {
            CK_SESSION_INFO info;
            check(m_.fl->C_GetSessionInfo(main_, &info), m_.role, "C_GetSessionInfo");
        });
    }

    std::vector<double> get_attribute_value(unsigned long iterations, unsigned batches) {
        CK_ULONG bits = 0;
        CK_ATTRIBUTE attr{CKA_MODULUS_BITS, &bits, sizeof bits};
        check(m_.fl->C_GetAttributeValue(main_, pub_, &attr, 1), m_.role,
              "C_GetAttributeValue(CKA_MODULUS_BITS)");
        if (bits != 2048) {
            throw Failure(m_.role + ": CKA_MODULUS_BITS is " + std::to_string(bits) +
                          ", expected 2048");
        }
        return latency(iterations, batches, [&] {
            CK_ATTRIBUTE a{CKA_MODULUS_BITS, &bits, sizeof bits};
            check(m_.fl->C_GetAttributeValue(main_, pub_, &a, 1), m_.role,
                  "C_GetAttributeValue(CKA_MODULUS_BITS)");
        });
    }

    // The same call on a session data object: SoftHSM2 re-reads a token
    // object's file on every attribute access (about 8 us), which buries a
    // sub-microsecond overhead in file-system noise; a session object does not.
    std::vector<double> get_attribute_session_object(unsigned long iterations, unsigned batches) {
        CK_OBJECT_CLASS cls = CKO_DATA;
        CK_BBOOL no = CK_FALSE;
        std::string label = "ukey-bench-data";
        unsigned char value[16];
        std::memset(value, 0x3c, sizeof value);
        CK_ATTRIBUTE tmpl[] = {
            {CKA_CLASS, &cls, sizeof cls},
            {CKA_TOKEN, &no, sizeof no},
            {CKA_PRIVATE, &no, sizeof no},
            {CKA_LABEL, label.data(), label.size()},
            {CKA_VALUE, value, sizeof value},
        };
        CK_OBJECT_HANDLE obj = CK_INVALID_HANDLE;
        check(m_.fl->C_CreateObject(main_, tmpl, std::size(tmpl), &obj), m_.role,
              "C_CreateObject(session CKO_DATA)");
        char buf[64];
        CK_ATTRIBUTE attr{CKA_LABEL, buf, sizeof buf};
        check(m_.fl->C_GetAttributeValue(main_, obj, &attr, 1), m_.role,
              "C_GetAttributeValue(CKA_LABEL)");
        if (std::string_view(buf, attr.ulValueLen) != label) {
            throw Failure(m_.role + ": the session object's CKA_LABEL reads back wrong");
        }
        auto samples = latency(iterations, batches, [&] {
            CK_ATTRIBUTE a{CKA_LABEL, buf, sizeof buf};
            check(m_.fl->C_GetAttributeValue(main_, obj, &a, 1), m_.role,
                  "C_GetAttributeValue(CKA_LABEL)");
        });
        check(m_.fl->C_DestroyObject(main_, obj), m_.role, "C_DestroyObject");
        return samples;
    }

    std::vector<double> digest64(unsigned long iterations, unsigned batches) {
        unsigned char data[64];
        std::memset(data, 0xa5, sizeof data);
        return latency(iterations, batches, [&] {
            CK_MECHANISM mech{CKM_SHA256, nullptr, 0};
            unsigned char out[32];
            CK_ULONG len = sizeof out;
            check(m_.fl->C_DigestInit(main_, &mech), m_.role, "C_DigestInit(CKM_SHA256)");
            check(m_.fl->C_Digest(main_, data, sizeof data, out, &len), m_.role, "C_Digest");
        });
    }

    // Single C_Login(CKU_USER) calls with the right PIN, each followed by a
    // C_Logout outside the timed window. Through ukey a login writes the
    // durable try counter (one fdatasync) before the PIN reaches the token.
    std::vector<double> login_calls(unsigned n) {
        check(m_.fl->C_Logout(main_), m_.role, "C_Logout");
        std::vector<double> out;
        for (unsigned i = 0; i < n; ++i) {
            auto t0 = Clock::now();
            login_user(m_, main_);
            std::chrono::duration<double, std::nano> dt = Clock::now() - t0;
            out.push_back(dt.count());
            check(m_.fl->C_Logout(main_), m_.role, "C_Logout");
        }
        login_user(m_, main_);
        return out;
    }

   private:
    const Module& m_;
    bool active_ = false;
    CK_SLOT_ID slot_ = 0;
    CK_SESSION_HANDLE main_ = CK_INVALID_HANDLE;
    CK_OBJECT_HANDLE priv_ = CK_INVALID_HANDLE;
    CK_OBJECT_HANDLE pub_ = CK_INVALID_HANDLE;
};

}  // namespace ukey_bench
