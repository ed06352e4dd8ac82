// ukey-bench: compares the same PKCS#11 operations through two modules in one
// process run:
//   (A) SoftHSM2 loaded directly, and
//   (B) libukey-pkcs11.so, which forwards to that same SoftHSM2.
//
// Both modules end up sharing one libsofthsm2.so instance (dlopen returns the
// same handle), so they are never initialised at the same time: every
// measurement phase is a complete C_Initialize ... C_Finalize cycle of one
// module, and the phases alternate A/B (ABBA order across rounds) so that
// machine noise hits both sides equally. Each reported number is a median.
//
// The benchmark works in its own private temporary directory (mode 0700)
// holding a fresh SoftHSM2 token directory, softhsm2.conf (via SOFTHSM2_CONF)
// and a ukey config file (via UKEY_CONF); the directory is removed on exit.

#include <ukey/pkcs11.h>

#include <dlfcn.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <functional>
#include <latch>
#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <vector>

#ifndef UKEY_BENCH_SOFTHSM_MODULE
#define UKEY_BENCH_SOFTHSM_MODULE "/usr/lib/softhsm/libsofthsm2.so"
#endif

namespace {

using Clock = std::chrono::steady_clock;

// Throwaway credentials for the benchmark's private token. Never printed.
constexpr std::string_view kSoPin = "bench-so-pin-8413";
constexpr std::string_view kUserPin = "bench-user-pin-2967";
constexpr std::string_view kTokenLabel = "ukey-bench";
constexpr std::string_view kKeyLabel = "ukey-bench-rsa2048";
constexpr unsigned char kKeyId[] = {0x75, 0x6b, 0x65, 0x79, 0x62, 0x01};

constexpr double kSignRatioTarget = 0.98;  // ukey/direct throughput, at least
constexpr double kAddedNsTarget = 200.0;   // ukey - direct latency, at most

// ---------------------------------------------------------------------------
// Errors

const char* rv_name(CK_RV rv) {
#define UKEY_RV(x) \
    case x:        \
        return #x;
    switch (rv) {
        UKEY_RV(CKR_OK)
        UKEY_RV(CKR_CANCEL)
        UKEY_RV(CKR_HOST_MEMORY)
        UKEY_RV(CKR_SLOT_ID_INVALID)
        UKEY_RV(CKR_GENERAL_ERROR)
        UKEY_RV(CKR_FUNCTION_FAILED)
        UKEY_RV(CKR_ARGUMENTS_BAD)
        UKEY_RV(CKR_NO_EVENT)
        UKEY_RV(CKR_NEED_TO_CREATE_THREADS)
        UKEY_RV(CKR_CANT_LOCK)
        UKEY_RV(CKR_ATTRIBUTE_READ_ONLY)
        UKEY_RV(CKR_ATTRIBUTE_SENSITIVE)
        UKEY_RV(CKR_ATTRIBUTE_TYPE_INVALID)
        UKEY_RV(CKR_ATTRIBUTE_VALUE_INVALID)
        UKEY_RV(CKR_ACTION_PROHIBITED)
        UKEY_RV(CKR_DATA_INVALID)
        UKEY_RV(CKR_DATA_LEN_RANGE)
        UKEY_RV(CKR_DEVICE_ERROR)
        UKEY_RV(CKR_DEVICE_MEMORY)
        UKEY_RV(CKR_DEVICE_REMOVED)
        UKEY_RV(CKR_ENCRYPTED_DATA_INVALID)
        UKEY_RV(CKR_ENCRYPTED_DATA_LEN_RANGE)
        UKEY_RV(CKR_FUNCTION_CANCELED)
        UKEY_RV(CKR_FUNCTION_NOT_PARALLEL)
        UKEY_RV(CKR_FUNCTION_NOT_SUPPORTED)
        UKEY_RV(CKR_KEY_HANDLE_INVALID)
        UKEY_RV(CKR_KEY_SIZE_RANGE)
        UKEY_RV(CKR_KEY_TYPE_INCONSISTENT)
        UKEY_RV(CKR_KEY_NOT_NEEDED)
        UKEY_RV(CKR_KEY_CHANGED)
        UKEY_RV(CKR_KEY_NEEDED)
        UKEY_RV(CKR_KEY_INDIGESTIBLE)
        UKEY_RV(CKR_KEY_FUNCTION_NOT_PERMITTED)
        UKEY_RV(CKR_KEY_NOT_WRAPPABLE)
        UKEY_RV(CKR_KEY_UNEXTRACTABLE)
        UKEY_RV(CKR_MECHANISM_INVALID)
        UKEY_RV(CKR_MECHANISM_PARAM_INVALID)
        UKEY_RV(CKR_OBJECT_HANDLE_INVALID)
        UKEY_RV(CKR_OPERATION_ACTIVE)
        UKEY_RV(CKR_OPERATION_NOT_INITIALIZED)
        UKEY_RV(CKR_PIN_INCORRECT)
        UKEY_RV(CKR_PIN_INVALID)
        UKEY_RV(CKR_PIN_LEN_RANGE)
        UKEY_RV(CKR_PIN_EXPIRED)
        UKEY_RV(CKR_PIN_LOCKED)
        UKEY_RV(CKR_SESSION_CLOSED)
        UKEY_RV(CKR_SESSION_COUNT)
        UKEY_RV(CKR_SESSION_HANDLE_INVALID)
        UKEY_RV(CKR_SESSION_PARALLEL_NOT_SUPPORTED)
        UKEY_RV(CKR_SESSION_READ_ONLY)
        UKEY_RV(CKR_SESSION_EXISTS)
        UKEY_RV(CKR_SESSION_READ_ONLY_EXISTS)
        UKEY_RV(CKR_SESSION_READ_WRITE_SO_EXISTS)
        UKEY_RV(CKR_SIGNATURE_INVALID)
        UKEY_RV(CKR_SIGNATURE_LEN_RANGE)
        UKEY_RV(CKR_TEMPLATE_INCOMPLETE)
        UKEY_RV(CKR_TEMPLATE_INCONSISTENT)
        UKEY_RV(CKR_TOKEN_NOT_PRESENT)
        UKEY_RV(CKR_TOKEN_NOT_RECOGNIZED)
        UKEY_RV(CKR_TOKEN_WRITE_PROTECTED)
        UKEY_RV(CKR_UNWRAPPING_KEY_SIZE_RANGE)
        UKEY_RV(CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT)
        UKEY_RV(CKR_USER_ALREADY_LOGGED_IN)
        UKEY_RV(CKR_USER_NOT_LOGGED_IN)
        UKEY_RV(CKR_USER_PIN_NOT_INITIALIZED)
        UKEY_RV(CKR_USER_TYPE_INVALID)
        UKEY_RV(CKR_USER_ANOTHER_ALREADY_LOGGED_IN)
        UKEY_RV(CKR_USER_TOO_MANY_TYPES)
        UKEY_RV(CKR_WRAPPED_KEY_INVALID)
        UKEY_RV(CKR_WRAPPED_KEY_LEN_RANGE)
        UKEY_RV(CKR_WRAPPING_KEY_HANDLE_INVALID)
        UKEY_RV(CKR_WRAPPING_KEY_SIZE_RANGE)
        UKEY_RV(CKR_WRAPPING_KEY_TYPE_INCONSISTENT)
        UKEY_RV(CKR_RANDOM_SEED_NOT_SUPPORTED)
        UKEY_RV(CKR_RANDOM_NO_RNG)
        UKEY_RV(CKR_DOMAIN_PARAMS_INVALID)
        UKEY_RV(CKR_CURVE_NOT_SUPPORTED)
        UKEY_RV(CKR_BUFFER_TOO_SMALL)
        UKEY_RV(CKR_SAVED_STATE_INVALID)
        UKEY_RV(CKR_INFORMATION_SENSITIVE)
        UKEY_RV(CKR_STATE_UNSAVEABLE)
        UKEY_RV(CKR_CRYPTOKI_NOT_INITIALIZED)
        UKEY_RV(CKR_CRYPTOKI_ALREADY_INITIALIZED)
        UKEY_RV(CKR_MUTEX_BAD)
        UKEY_RV(CKR_MUTEX_NOT_LOCKED)
        UKEY_RV(CKR_NEW_PIN_MODE)
        UKEY_RV(CKR_NEXT_OTP)
        UKEY_RV(CKR_EXCEEDED_MAX_ITERATIONS)
        UKEY_RV(CKR_FIPS_SELF_TEST_FAILED)
        UKEY_RV(CKR_LIBRARY_LOAD_FAILED)
        UKEY_RV(CKR_PIN_TOO_WEAK)
        UKEY_RV(CKR_PUBLIC_KEY_INVALID)
        UKEY_RV(CKR_FUNCTION_REJECTED)
        default:
            return rv >= CKR_VENDOR_DEFINED ? "CKR_VENDOR_DEFINED+" : "unknown CKR";
    }
#undef UKEY_RV
}

std::string rv_text(CK_RV rv) {
    char hex[32];
    std::snprintf(hex, sizeof hex, " (0x%08lx)", static_cast<unsigned long>(rv));
    return std::string(rv_name(rv)) + hex;
}

class Failure : public std::runtime_error {
   public:
    using std::runtime_error::runtime_error;
};

// Every CK_RV goes through here; `where` names the module and the call.
void check(CK_RV rv, std::string_view where, std::string_view call) {
    if (rv != CKR_OK) {
        throw Failure(std::string(where) + ": " + std::string(call) + " failed: " + rv_text(rv));
    }
}

// ---------------------------------------------------------------------------
// Statistics

double median(std::vector<double> v) {
    if (v.empty()) return std::nan("");
    std::sort(v.begin(), v.end());
    size_t n = v.size();
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2.0;
}

// (max - min) / median: how far apart the repeated samples of one side are.
double spread(const std::vector<double>& v) {
    if (v.size() < 2) return 0.0;
    auto [lo, hi] = std::minmax_element(v.begin(), v.end());
    double m = median(v);
    return m > 0 ? (*hi - *lo) / m : 0.0;
}

// The 1-minute load average, or NaN where unavailable.
double load_average() {
    double v = std::nan("");
    if (std::FILE* f = std::fopen("/proc/loadavg", "r")) {
        if (std::fscanf(f, "%lf", &v) != 1) v = std::nan("");
        std::fclose(f);
    }
    return v;
}

// Other work on the machine hits the two sides unequally however the phases
// are interleaved; say so when the machine was busy before we started.
bool machine_busy(double load) {
    unsigned cpus = std::max(1u, std::thread::hardware_concurrency());
    return std::isfinite(load) && load >= 0.5 * cpus;
}

// ---------------------------------------------------------------------------
// Temporary directory and configuration files

class TempDir {
   public:
    TempDir() {
        const char* base = std::getenv("TMPDIR");
        std::string tmpl = std::string(base && *base ? base : "/tmp") + "/ukey-bench.XXXXXX";
        std::vector<char> buf(tmpl.begin(), tmpl.end());
        buf.push_back('\0');
        if (!mkdtemp(buf.data())) {  // mkdtemp creates the directory with mode 0700
            throw Failure("cannot create temporary directory from " + tmpl + ": " +
                          std::strerror(errno));
        }
        path_ = buf.data();
    }
    ~TempDir() {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
        if (ec) {
            std::fprintf(stderr, "ukey-bench: warning: could not remove %s: %s\n", path_.c_str(),
                         ec.message().c_str());
        }
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    const std::string& path() const { return path_; }

   private:
    std::string path_;
};

void make_private_dir(const std::string& path) {
    if (mkdir(path.c_str(), 0700) != 0) {
        throw Failure("cannot create directory " + path + ": " + std::strerror(errno));
    }
}

void write_private_file(const std::string& path, const std::string& text) {
    {
        std::ofstream out(path, std::ios::out | std::ios::trunc);
        out << text;
        out.close();
        if (!out) throw Failure("cannot write " + path);
    }
    if (chmod(path.c_str(), 0600) != 0) {
        throw Failure("cannot chmod " + path + ": " + std::strerror(errno));
    }
}

// A TOML basic string.
std::string toml_string(std::string_view s) {
    std::string out = "\"";
    for (char c : s) {
        if (c == '"' || c == '\\') {
            out += '\\';
            out += c;
        } else if (static_cast<unsigned char>(c) < 0x20) {
            char esc[8];
            std::snprintf(esc, sizeof esc, "\\u%04x", static_cast<unsigned>(c));
            out += esc;
        } else {
            out += c;
        }
    }
    return out + "\"";
}

void set_env(const char* name, const std::string& value) {
    if (setenv(name, value.c_str(), 1) != 0) {
        throw Failure(std::string("setenv ") + name + ": " + std::strerror(errno));
    }
}

// ---------------------------------------------------------------------------
// Modules

struct Module {
    std::string role;  // "SoftHSM direct" or "via ukey"; used in messages
    std::string path;
    void* handle = nullptr;
    CK_FUNCTION_LIST_PTR fl = nullptr;
};

// The handles are intentionally never dlclose()d: the ukey module holds its
// own reference to SoftHSM2, and unloading libraries that use OpenSSL in the
// middle of a process is a source of trouble we do not want to measure.
void load(Module& m) {
    m.handle = dlopen(m.path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!m.handle) {
        const char* err = dlerror();
        throw Failure(m.role + ": cannot load " + m.path + ": " + (err ? err : "unknown error"));
    }
    auto get = reinterpret_cast<CK_C_GetFunctionList>(dlsym(m.handle, "C_GetFunctionList"));
    if (!get) throw Failure(m.role + ": " + m.path + " has no C_GetFunctionList");
    check(get(&m.fl), m.role, "C_GetFunctionList");
    if (!m.fl) throw Failure(m.role + ": C_GetFunctionList returned a null function list");
}

void initialize(const Module& m) {
    CK_C_INITIALIZE_ARGS args{};
    args.flags = CKF_OS_LOCKING_OK;
    check(m.fl->C_Initialize(&args), m.role, "C_Initialize");
}

std::string padded(std::string_view s, size_t width) {
    std::string out(s.substr(0, width));
    out.resize(width, ' ');
    return out;
}

std::string trimmed(const unsigned char* p, size_t n) {
    std::string s(reinterpret_cast<const char*>(p), n);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\0')) s.pop_back();
    return s;
}

std::vector<CK_SLOT_ID> slot_list(const Module& m, bool token_present) {
    CK_ULONG n = 0;
    check(m.fl->C_GetSlotList(token_present ? CK_TRUE : CK_FALSE, nullptr, &n), m.role,
          "C_GetSlotList");
    std::vector<CK_SLOT_ID> slots(n);
    if (n) {
        check(m.fl->C_GetSlotList(token_present ? CK_TRUE : CK_FALSE, slots.data(), &n), m.role,
              "C_GetSlotList");
    }
    slots.resize(n);
    return slots;
}

CK_TOKEN_INFO token_info(const Module& m, CK_SLOT_ID slot) {
    CK_TOKEN_INFO info{};
    check(m.fl->C_GetTokenInfo(slot, &info), m.role, "C_GetTokenInfo");
    return info;
}

// The slot holding the benchmark token: found by label; if the module
// renames tokens, the only slot with a token will do.
CK_SLOT_ID find_bench_slot(const Module& m) {
    auto slots = slot_list(m, true);
    std::vector<std::string> labels;
    for (CK_SLOT_ID s : slots) {
        CK_TOKEN_INFO info = token_info(m, s);
        std::string label = trimmed(info.label, sizeof info.label);
        if (label == kTokenLabel && (info.flags & CKF_TOKEN_INITIALIZED)) return s;
        labels.push_back(label);
    }
    if (slots.size() == 1) return slots[0];
    std::string seen;
    for (auto& l : labels) seen += (seen.empty() ? "" : ", ") + ("\"" + l + "\"");
    throw Failure(m.role + ": no slot holds the token \"" + std::string(kTokenLabel) + "\" (" +
                  std::to_string(slots.size()) + " slots with tokens: " + seen + ")");
}

void login_user(const Module& m, CK_SESSION_HANDLE s) {
    CK_RV rv = m.fl->C_Login(s, CKU_USER,
                             reinterpret_cast<CK_UTF8CHAR_PTR>(const_cast<char*>(kUserPin.data())),
                             kUserPin.size());
    // Login state is per token, so the second session of a thread pool finds
    // the user already logged in.
    if (rv != CKR_USER_ALREADY_LOGGED_IN) check(rv, m.role, "C_Login(CKU_USER)");
}

CK_SESSION_HANDLE open_session(const Module& m, CK_SLOT_ID slot, CK_FLAGS extra = 0) {
    CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
    check(m.fl->C_OpenSession(slot, CKF_SERIAL_SESSION | extra, nullptr, nullptr, &s), m.role,
          "C_OpenSession");
    return s;
}

CK_OBJECT_HANDLE find_key(const Module& m, CK_SESSION_HANDLE s, CK_OBJECT_CLASS cls) {
    CK_ATTRIBUTE tmpl[] = {
        {CKA_CLASS, &cls, sizeof cls},
        {CKA_ID, const_cast<unsigned char*>(kKeyId), sizeof kKeyId},
    };
    check(m.fl->C_FindObjectsInit(s, tmpl, 2), m.role, "C_FindObjectsInit");
    CK_OBJECT_HANDLE found[4];
    CK_ULONG n = 0;
    CK_RV rv = m.fl->C_FindObjects(s, found, 4, &n);
    CK_RV rv_final = m.fl->C_FindObjectsFinal(s);
    check(rv, m.role, "C_FindObjects");
    check(rv_final, m.role, "C_FindObjectsFinal");
    const char* what = cls == CKO_PRIVATE_KEY ? "private" : "public";
    if (n != 1) {
        throw Failure(m.role + ": C_FindObjects by CKA_ID found " + std::to_string(n) + " " +
                      what + " keys, expected 1");
    }
    return found[0];
}

// One-time token setup, through SoftHSM2 directly: initialise the empty
// slot's token, set the user PIN and generate the RSA-2048 key pair.
void setup_token(const Module& m) {
    initialize(m);
    try {
        CK_SLOT_ID empty = 0;
        bool have_empty = false;
        for (CK_SLOT_ID s : slot_list(m, true)) {
            if (!(token_info(m, s).flags & CKF_TOKEN_INITIALIZED)) {
                empty = s;
                have_empty = true;
                break;
            }
        }
        if (!have_empty) throw Failure(m.role + ": no uninitialised token slot");

        std::string label = padded(kTokenLabel, 32);
        check(m.fl->C_InitToken(empty,
                                reinterpret_cast<CK_UTF8CHAR_PTR>(const_cast<char*>(kSoPin.data())),
                                kSoPin.size(), reinterpret_cast<CK_UTF8CHAR_PTR>(label.data())),
              m.role, "C_InitToken");

        // SoftHSM2 gives the initialised token a new slot ID.
        CK_SLOT_ID slot = find_bench_slot(m);
        CK_SESSION_HANDLE s = open_session(m, slot, CKF_RW_SESSION);
        check(m.fl->C_Login(s, CKU_SO,
                            reinterpret_cast<CK_UTF8CHAR_PTR>(const_cast<char*>(kSoPin.data())),
                            kSoPin.size()),
              m.role, "C_Login(CKU_SO)");
        check(m.fl->C_InitPIN(s, reinterpret_cast<CK_UTF8CHAR_PTR>(const_cast<char*>(kUserPin.data())),
                              kUserPin.size()),
              m.role, "C_InitPIN");
        check(m.fl->C_Logout(s), m.role, "C_Logout(CKU_SO)");
        login_user(m, s);

        CK_MECHANISM mech{CKM_RSA_PKCS_KEY_PAIR_GEN, nullptr, 0};
        CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
        CK_ULONG bits = 2048;
        CK_BYTE exponent[] = {0x01, 0x00, 0x01};
        std::string key_label(kKeyLabel);
        CK_ATTRIBUTE pub[] = {
            {CKA_TOKEN, &yes, sizeof yes},
            {CKA_PRIVATE, &no, sizeof no},
            {CKA_VERIFY, &yes, sizeof yes},
            {CKA_MODULUS_BITS, &bits, sizeof bits},
            {CKA_PUBLIC_EXPONENT, exponent, sizeof exponent},
            {CKA_ID, const_cast<unsigned char*>(kKeyId), sizeof kKeyId},
            {CKA_LABEL, key_label.data(), key_label.size()},
        };
        CK_ATTRIBUTE priv[] = {
            {CKA_TOKEN, &yes, sizeof yes},
            {CKA_PRIVATE, &yes, sizeof yes},
            {CKA_SENSITIVE, &yes, sizeof yes},
            {CKA_SIGN, &yes, sizeof yes},
            {CKA_ID, const_cast<unsigned char*>(kKeyId), sizeof kKeyId},
            {CKA_LABEL, key_label.data(), key_label.size()},
        };
        CK_OBJECT_HANDLE hpub = CK_INVALID_HANDLE, hpriv = CK_INVALID_HANDLE;
        check(m.fl->C_GenerateKeyPair(s, &mech, pub, std::size(pub), priv, std::size(priv), &hpub,
                                      &hpriv),
              m.role, "C_GenerateKeyPair(RSA-2048)");
        check(m.fl->C_Logout(s), m.role, "C_Logout(CKU_USER)");
        check(m.fl->C_CloseSession(s), m.role, "C_CloseSession");
    } catch (...) {
        m.fl->C_Finalize(nullptr);
        throw;
    }
    check(m.fl->C_Finalize(nullptr), m.role, "C_Finalize");
}

// ---------------------------------------------------------------------------
// One measurement phase: a module from C_Initialize to C_Finalize.

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

// ---------------------------------------------------------------------------
// Measurements and results

enum class Kind { Throughput, Latency, Login };

bool g_latency_min = false;  // --min: report the fastest latency batch, not the median

// The p-th percentile (nearest rank) of v.
double percentile(std::vector<double> v, double p) {
    if (v.empty()) return std::nan("");
    std::sort(v.begin(), v.end());
    size_t rank = static_cast<size_t>(std::ceil(p / 100.0 * v.size()));
    return v[std::min(v.size() - 1, rank == 0 ? 0 : rank - 1)];
}

struct Measurement {
    std::string key;    // JSON name
    std::string title;  // table name
    Kind kind;
    std::vector<double> samples[2];  // [0] direct, [1] via ukey
    double pct = 0;                  // Kind::Login: which percentile of single calls

    double stat(int side) const {
        if (pct > 0) return percentile(samples[side], pct);
        // Latency on a shared machine: interference only ever adds time, so
        // the fastest batch is the best estimate of the call's own cost.
        if (kind == Kind::Latency && g_latency_min) return *std::min_element(samples[side].begin(), samples[side].end());
        return median(samples[side]);
    }
    double direct() const { return stat(0); }
    double ukey() const { return stat(1); }
    double ratio() const { return ukey() / direct(); }
    double added_ns() const { return ukey() - direct(); }
    const char* unit() const { return kind == Kind::Throughput ? "ops/s" : "ns/call"; }
    bool pass() const {
        if (kind == Kind::Login) return true;  // informational: one fdatasync is expected
        return kind == Kind::Throughput ? ratio() >= kSignRatioTarget : added_ns() <= kAddedNsTarget;
    }
    std::string target() const {
        char buf[64];
        if (kind == Kind::Login) return "~1 fsync (info)";
        if (kind == Kind::Throughput) {
            std::snprintf(buf, sizeof buf, "ratio >= %.2f", kSignRatioTarget);
        } else {
            std::snprintf(buf, sizeof buf, "added <= %.0f ns", kAddedNsTarget);
        }
        return buf;
    }
    double noise() const { return std::max(spread(samples[0]), spread(samples[1])); }
};

struct Options {
    std::string direct_module = UKEY_BENCH_SOFTHSM_MODULE;
    std::string ukey_module =
#ifdef UKEY_BENCH_DEFAULT_MODULE
        UKEY_BENCH_DEFAULT_MODULE;
#else
        "";
#endif
    double seconds = 3.0;
    unsigned rounds = 3;
    unsigned long iterations = 200000;
    unsigned batches = 5;
    unsigned logins = 200;
    bool json = false;
    double load_at_start = std::nan("");  // measured, not an option
};

void run_phase(const Module& m, int side, const Options& o, std::vector<Measurement>& ms) {
    std::fprintf(stderr, "ukey-bench:   %s ...\n", m.role.c_str());
    Phase p(m);
    ms[0].samples[side].push_back(p.sign_throughput(1, o.seconds));
    ms[1].samples[side].push_back(p.sign_throughput(2, o.seconds));
    for (double v : p.get_session_info(o.iterations, o.batches)) ms[2].samples[side].push_back(v);
    for (double v : p.get_attribute_value(o.iterations, o.batches)) ms[3].samples[side].push_back(v);
    for (double v : p.get_attribute_session_object(o.iterations, o.batches)) {
        ms[4].samples[side].push_back(v);
    }
    for (double v : p.digest64(o.iterations, o.batches)) ms[5].samples[side].push_back(v);
    for (double v : p.login_calls(o.logins)) {
        ms[6].samples[side].push_back(v);
        ms[7].samples[side].push_back(v);
    }
    p.finish();
}

std::string json_string(std::string_view s) {
    std::string out = "\"";
    for (char c : s) {
        switch (c) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\n': out += "\\n"; break;
            case '\t': out += "\\t"; break;
            default:
                if (static_cast<unsigned char>(c) < 0x20) {
                    char esc[8];
                    std::snprintf(esc, sizeof esc, "\\u%04x", static_cast<unsigned>(c));
                    out += esc;
                } else {
                    out += c;
                }
        }
    }
    return out + "\"";
}

std::string json_number(double v) {
    if (!std::isfinite(v)) return "null";
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.4f", v);
    return buf;
}

std::string json_array(const std::vector<double>& v) {
    std::string out = "[";
    for (size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + json_number(v[i]);
    return out + "]";
}

void print_json(const Options& o, const std::vector<Measurement>& ms) {
    std::printf("{\n");
    std::printf("  \"direct_module\": %s,\n", json_string(o.direct_module).c_str());
    std::printf("  \"ukey_module\": %s,\n", json_string(o.ukey_module).c_str());
    std::printf("  \"rounds\": %u,\n", o.rounds);
    std::printf("  \"seconds\": %s,\n", json_number(o.seconds).c_str());
    std::printf("  \"latency_iterations\": %lu,\n", o.iterations);
    std::printf("  \"latency_batches\": %u,\n", o.batches);
    std::printf("  \"cpus\": %u,\n", std::thread::hardware_concurrency());
    std::printf("  \"load_average_at_start\": %s,\n", json_number(o.load_at_start).c_str());
    std::printf("  \"machine_busy\": %s,\n", machine_busy(o.load_at_start) ? "true" : "false");
    std::printf("  \"results\": [\n");
    for (size_t i = 0; i < ms.size(); ++i) {
        const auto& m = ms[i];
        std::printf("    {\"name\": %s, \"kind\": %s, \"unit\": %s,\n", json_string(m.key).c_str(),
                    m.kind == Kind::Throughput ? "\"throughput\""
                    : m.kind == Kind::Login    ? "\"login\""
                                               : "\"latency\"",
                    json_string(m.unit()).c_str());
        std::printf("     \"direct\": %s, \"ukey\": %s, \"ratio\": %s,", json_number(m.direct()).c_str(),
                    json_number(m.ukey()).c_str(), json_number(m.ratio()).c_str());
        if (m.kind != Kind::Throughput) {
            std::printf(" \"added_ns\": %s,", json_number(m.added_ns()).c_str());
        }
        std::printf("\n     \"target\": %s, \"pass\": %s, \"noise\": %s,\n",
                    json_string(m.target()).c_str(), m.pass() ? "true" : "false",
                    json_number(m.noise()).c_str());
        std::printf("     \"direct_samples\": %s,\n", json_array(m.samples[0]).c_str());
        std::printf("     \"ukey_samples\": %s}%s\n", json_array(m.samples[1]).c_str(),
                    i + 1 < ms.size() ? "," : "");
    }
    std::printf("  ]\n}\n");
}

void print_table(const Options& o, const std::vector<Measurement>& ms) {
    std::printf("ukey-bench: %u A/B rounds, %.1f s per throughput run, %lu calls per latency run "
                "(%u batches), %u CPUs\n",
                o.rounds, o.seconds, o.iterations, o.batches, std::thread::hardware_concurrency());
    std::printf("  direct:   %s\n  via ukey: %s\n  load average at start: %.2f\n\n",
                o.direct_module.c_str(), o.ukey_module.c_str(), o.load_at_start);
    std::printf("%-50s %14s %14s %7s %9s %6s  %-16s %s\n", "measurement (median)", "SoftHSM direct",
                "via ukey", "ratio", "added ns", "noise", "target", "result");
    for (const auto& m : ms) {
        std::string name = m.title + " [" + m.unit() + "]";
        char added[32] = "-";
        if (m.kind != Kind::Throughput) std::snprintf(added, sizeof added, "%+.1f", m.added_ns());
        std::printf("%-50s %14.1f %14.1f %7.3f %9s %5.1f%%  %-16s %s\n", name.c_str(), m.direct(),
                    m.ukey(), m.ratio(), added, 100.0 * m.noise(), m.target().c_str(),
                    m.pass() ? "PASS" : "MISS");
    }
    std::printf("\nratio = via ukey / direct (throughput: higher is better; latency: lower is "
                "better).\nnoise = largest (max-min)/median over the repeated samples of one side.\n"
                "Targets are informational; a MISS does not change the exit status.\n");
    if (machine_busy(o.load_at_start)) {
        std::printf("WARNING: the machine was busy when the run started (load average %.2f on %u "
                    "CPUs);\nthe numbers are noisy, rerun on a quiet machine or with more --rounds.\n",
                    o.load_at_start, std::thread::hardware_concurrency());
    }
}

// ---------------------------------------------------------------------------
// Command line

void usage(std::FILE* f) {
    std::fprintf(f,
                 "usage: ukey-bench [options] [UKEY_MODULE]\n"
                 "\n"
                 "Measures PKCS#11 operations through SoftHSM2 directly and through the ukey\n"
                 "module (which forwards to the same SoftHSM2) and prints both side by side.\n"
                 "\n"
                 "  --ukey-module PATH    module under test (default: %s)\n"
                 "  --direct-module PATH  SoftHSM2 module (default: %s)\n"
                 "  --seconds S           duration of each throughput run (default 3)\n"
                 "  --rounds N            A/B rounds; medians are reported (default 3)\n"
                 "  --iterations N        calls per latency run and round (default 200000)\n"
                 "  --batches N           batches a latency run is split into (default 5)\n"
                 "  --logins N            single C_Login calls timed per phase (default 200)\n"
                 "  --min                 latency lines report the fastest batch instead of the median\n"
                 "                        (robust on a noisy machine: interference only adds time)\n"
                 "  --json                print the results as JSON\n"
                 "  -h, --help            this text\n",
#ifdef UKEY_BENCH_DEFAULT_MODULE
                 UKEY_BENCH_DEFAULT_MODULE,
#else
                 "none built; required",
#endif
                 UKEY_BENCH_SOFTHSM_MODULE);
}

struct UsageError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

template <typename T>
T parse_uint(std::string_view opt, std::string_view s, T min) {
    T v{};
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || p != s.data() + s.size() || v < min) {
        throw UsageError(std::string(opt) + ": expected an integer >= " + std::to_string(min) +
                         ", got \"" + std::string(s) + "\"");
    }
    return v;
}

double parse_seconds(std::string_view s) {
    std::string str(s);
    char* end = nullptr;
    errno = 0;
    double v = std::strtod(str.c_str(), &end);
    if (errno || end == str.c_str() || *end || !(v > 0) || v > 3600) {
        throw UsageError("--seconds: expected a number of seconds in (0, 3600], got \"" + str + "\"");
    }
    return v;
}

Options parse_args(int argc, char** argv) {
    Options o;
    bool positional_seen = false;
    for (int i = 1; i < argc; ++i) {
        std::string_view a = argv[i];
        auto value = [&]() -> std::string_view {
            auto eq = a.find('=');
            if (a.starts_with("--") && eq != std::string_view::npos) return a.substr(eq + 1);
            if (i + 1 >= argc) throw UsageError(std::string(a) + " needs a value");
            return argv[++i];
        };
        auto is = [&](std::string_view name) {
            return a == name || (a.starts_with(name) && a.size() > name.size() && a[name.size()] == '=');
        };
        if (a == "-h" || a == "--help") {
            usage(stdout);
            std::exit(0);
        } else if (a == "--json") {
            o.json = true;
        } else if (is("--ukey-module")) {
            o.ukey_module = value();
        } else if (is("--direct-module")) {
            o.direct_module = value();
        } else if (is("--seconds")) {
            o.seconds = parse_seconds(value());
        } else if (is("--rounds")) {
            o.rounds = parse_uint<unsigned>("--rounds", value(), 1);
        } else if (is("--iterations")) {
            o.iterations = parse_uint<unsigned long>("--iterations", value(), 1);
        } else if (is("--batches")) {
            o.batches = parse_uint<unsigned>("--batches", value(), 1);
        } else if (a == "--min") {
            g_latency_min = true;
        } else if (is("--logins")) {
            o.logins = parse_uint<unsigned>("--logins", value(), 1);
        } else if (!a.starts_with("-") && !positional_seen) {
            o.ukey_module = std::string(a);
            positional_seen = true;
        } else {
            throw UsageError("unknown argument \"" + std::string(a) + "\"");
        }
    }
    if (o.ukey_module.empty()) {
        throw UsageError("no ukey module: pass its path (the module was not built with this tree)");
    }
    if (o.batches > o.iterations) o.batches = static_cast<unsigned>(o.iterations);
    return o;
}

// Paths with a '/' are made absolute for the report and the ukey config; a
// bare file name is left to dlopen's library search.
std::string absolute(const std::string& p) {
    if (p.find('/') == std::string::npos) return p;
    std::error_code ec;
    auto abs = std::filesystem::absolute(p, ec);
    return ec ? p : abs.string();
}

int run(Options o) {
    o.load_at_start = load_average();
    TempDir dir;
    const std::string& d = dir.path();
    make_private_dir(d + "/tokens");
    make_private_dir(d + "/state");
    write_private_file(d + "/softhsm2.conf", "directories.tokendir = " + d + "/tokens\n"
                                             "objectstore.backend = file\n"
                                             "log.level = ERROR\n");
    write_private_file(d + "/ukey.toml", "state_dir = " + toml_string(d + "/state") + "\n"
                                         "\n"
                                         "[[backend]]\n"
                                         "name = \"softhsm\"\n"
                                         "module = " + toml_string(o.direct_module) + "\n"
                                         "pin_counter = \"ukey\"\n");
    set_env("SOFTHSM2_CONF", d + "/softhsm2.conf");
    set_env("UKEY_CONF", d + "/ukey.toml");

    Module direct{"SoftHSM direct", o.direct_module};
    Module ukey{"via ukey", o.ukey_module};
    load(direct);
    load(ukey);

    std::fprintf(stderr, "ukey-bench: creating token and RSA-2048 key pair\n");
    setup_token(direct);

    std::vector<Measurement> ms;
    ms.push_back({"sign_rsa2048_sha256_1thread", "RSA-2048 SHA256_RSA_PKCS sign, 1 thread",
                  Kind::Throughput, {}});
    ms.push_back({"sign_rsa2048_sha256_2threads", "RSA-2048 SHA256_RSA_PKCS sign, 2 threads",
                  Kind::Throughput, {}});
    ms.push_back({"C_GetSessionInfo", "C_GetSessionInfo", Kind::Latency, {}});
    ms.push_back({"C_GetAttributeValue_modulus_bits_token_object",
                  "C_GetAttributeValue(MODULUS_BITS, token)", Kind::Latency, {}});
    ms.push_back({"C_GetAttributeValue_label_session_object",
                  "C_GetAttributeValue(LABEL, session obj)", Kind::Latency, {}});
    ms.push_back({"digest_sha256_64B", "C_DigestInit+C_Digest SHA-256, 64 B", Kind::Latency, {}});
    ms.push_back({"C_Login_p50", "C_Login(CKU_USER), right PIN, p50", Kind::Login, {}, 50});
    ms.push_back({"C_Login_p99", "C_Login(CKU_USER), right PIN, p99", Kind::Login, {}, 99});

    for (unsigned r = 0; r < o.rounds; ++r) {
        std::fprintf(stderr, "ukey-bench: round %u/%u\n", r + 1, o.rounds);
        // ABBA order: neither side always runs first in a round.
        if (r % 2 == 0) {
            run_phase(direct, 0, o, ms);
            run_phase(ukey, 1, o, ms);
        } else {
            run_phase(ukey, 1, o, ms);
            run_phase(direct, 0, o, ms);
        }
    }

    if (o.json) {
        print_json(o, ms);
    } else {
        print_table(o, ms);
    }
    std::fflush(stdout);
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    try {
        Options o = parse_args(argc, argv);
        o.direct_module = absolute(o.direct_module);
        o.ukey_module = absolute(o.ukey_module);
        return run(o);
    } catch (const UsageError& e) {
        std::fprintf(stderr, "ukey-bench: %s\n\n", e.what());
        usage(stderr);
        return 2;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "ukey-bench: error: %s\n", e.what());
        return 1;
    }
}
