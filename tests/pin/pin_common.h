// Shared helpers of the PIN policy suites (tests/pin): ukey.conf variants,
// the vendor interface, PIN flags, the spy's log, the state files, stderr
// capture, and children that run concurrently.
#pragma once

#include "fakecard.h"
#include "spy.h"

#include "ukeytest/env.h"
#include "ukeytest/keys.h"
#include "ukeytest/module.h"
#include "ukeytest/process.h"
#include "ukeytest/rv.h"

#include <ukey/pkcs11.h>
#include <ukey/vendor.h>

#include <gtest/gtest.h>

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#ifndef UKEY_MODULE_PATH
#error "UKEY_MODULE_PATH must be defined (path of libukey-pkcs11.so)"
#endif

namespace pintest {

namespace fs = std::filesystem;

inline std::string module_path()
{
    return ukeytest::module_under_test(UKEY_MODULE_PATH);
}

constexpr CK_FLAGS kUserBits = CKF_USER_PIN_COUNT_LOW | CKF_USER_PIN_FINAL_TRY | CKF_USER_PIN_LOCKED;
constexpr CK_FLAGS kSoBits = CKF_SO_PIN_COUNT_LOW | CKF_SO_PIN_FINAL_TRY | CKF_SO_PIN_LOCKED;
constexpr CK_FLAGS kPinBits = kUserBits | kSoBits | CKF_USER_PIN_TO_BE_CHANGED;

// "CKF_USER_PIN_COUNT_LOW|CKF_USER_PIN_LOCKED" (only the PIN bits), "0" if none.
std::string flag_names(CK_FLAGS f);
// Compares PIN flags by name, so that a failure says which bits differ.
#define EXPECT_FLAGS(expected, actual) EXPECT_EQ(pintest::flag_names(expected), pintest::flag_names(actual))

// A transport PIN as issuers set them: trivial on purpose.
inline const std::string kTransport = "123456";

// ---- ukey.conf --------------------------------------------------------------

struct BackendLine {
    std::string name = "softhsm";
    std::string module;
    std::string pin_counter = "ukey";
};

// state_dir of `env`, [log] to stderr only (no syslog), the optional [pin]
// table body (e.g. "user_max_tries = 3\n"), and the backends.
std::string conf_text(const ukeytest::TestEnv& env, const std::vector<BackendLine>& backends,
                      const std::string& pin_table = {});

// ---- the vendor interface ---------------------------------------------------

// C_GetInterface("Vendor ukey") of the loaded module; throws if absent.
UKEY_FUNCTION_LIST* vendor(const ukeytest::Module& m);
// C_UkeyGetPinStatus; throws P11Error unless CKR_OK.
UKEY_PIN_STATUS pin_status(UKEY_FUNCTION_LIST* v, CK_SLOT_ID slot);
std::string describe(const UKEY_PIN_STATUS& s);

// ---- PKCS#11 shorthands (return the CK_RV, do not throw) --------------------

CK_RV try_login(CK_FUNCTION_LIST* fl, CK_SESSION_HANDLE s, CK_USER_TYPE who, const std::string& pin);
CK_RV init_pin(CK_FUNCTION_LIST* fl, CK_SESSION_HANDLE s, const std::string& pin);
CK_RV set_pin(CK_FUNCTION_LIST* fl, CK_SESSION_HANDLE s, const std::string& old_pin, const std::string& new_pin);
CK_RV init_token(CK_FUNCTION_LIST* fl, CK_SLOT_ID slot, const std::string& so_pin, const std::string& label);
// PIN bits (kPinBits) of C_GetTokenInfo; throws if it fails.
CK_FLAGS pin_flags(CK_FUNCTION_LIST* fl, CK_SLOT_ID slot);
CK_STATE session_state(CK_FUNCTION_LIST* fl, CK_SESSION_HANDLE s);
// n logins in a row with a wrong PIN, each expected to be CKR_PIN_INCORRECT.
void expect_wrong_pins(CK_FUNCTION_LIST* fl, CK_SESSION_HANDLE s, CK_USER_TYPE who, int n);

// ---- the spy's log ------------------------------------------------------------

// Number of "login <who>" lines; 0 if the file does not exist.
int spy_logins(const fs::path& log, CK_USER_TYPE who);
// Number of "rv <hex>" lines with that value.
int spy_results(const fs::path& log, CK_RV rv);

// ---- state files ----------------------------------------------------------------

inline fs::path pin_dir(const ukeytest::TestEnv& env)
{
    return env.state_dir() / "pin";
}
// Every entry of <state_dir>/pin (empty if the folder does not exist).
std::vector<fs::path> pin_dir_entries(const ukeytest::TestEnv& env);
// The single .pin file there; throws unless there is exactly one.
fs::path pin_file(const ukeytest::TestEnv& env);

using ukeytest::read_file;
// Unlike ukeytest::write_file, keeps an existing file's mode.
void overwrite_file(const fs::path& p, const std::string& data);

// ---- a Key behind the spy, behind ukey ------------------------------------

// What the spy forwards to.
enum class SpyTarget {
    softhsm,  // SoftHSM2 token "ukey-test" (PINs kUser / kSo), made by TestEnv
    fakecard, // ukey-test-fakecard ("fakecard"; $FAKECARD_STATE in the TestEnv dir)
};

// A TestEnv and a ukey.conf whose backend "softhsm" (pin_counter = "ukey",
// optional [pin] table) is the spy in front of `target`, logging to
// spy_log(). start() loads and initialises libukey-pkcs11.so and finds the
// Key's slot; stop() finalises it.
class SpyKey {
public:
    static constexpr const char* kUser = "user-1234";
    static constexpr const char* kSo = "so-pin-1234";

    explicit SpyKey(const std::string& pin_table = {}, SpyTarget target = SpyTarget::softhsm);
    ~SpyKey();

    void start();
    void stop();

    ukeytest::TestEnv& env() { return *env_; }
    const fs::path& spy_log() const { return spy_log_; }
    ukeytest::Module& module() { return *module_; }
    CK_FUNCTION_LIST* fl() const { return module_->fl(); }
    UKEY_FUNCTION_LIST* v() const { return vendor_; }
    CK_SLOT_ID slot() const { return slot_; }
    const std::string& label() const { return label_; }
    const std::string& user_pin() const { return user_pin_; }
    const std::string& so_pin() const { return so_pin_; }
    UKEY_PIN_STATUS status() const { return pin_status(vendor_, slot_); }
    CK_FLAGS flags() const { return pin_flags(fl(), slot_); }
    CK_SESSION_HANDLE open(bool rw = true) const { return ukeytest::open_session(fl(), slot_, rw); }
    int user_logins() const { return spy_logins(spy_log_, CKU_USER); }
    // Logs the SO in, C_InitPIN(user_pin()), logs out and closes the session.
    void unlock() const;

private:
    std::string label_, user_pin_, so_pin_;
    std::unique_ptr<ukeytest::TestEnv> env_;
    fs::path spy_log_;
    ukeytest::ScopedEnvVar spy_module_var_;
    ukeytest::ScopedEnvVar spy_log_var_;
    std::unique_ptr<ukeytest::ScopedEnvVar> card_var_;
    std::unique_ptr<ukeytest::Module> module_;
    UKEY_FUNCTION_LIST* vendor_ = nullptr;
    CK_SLOT_ID slot_ = 0;
};

// ---- descriptors ----------------------------------------------------------------------

// A descriptor of ours, closed when the Fd goes (or on reset()).
class Fd {
public:
    explicit Fd(int fd = -1) : fd_(fd) {}
    Fd(Fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
    Fd& operator=(Fd&& o) noexcept
    {
        reset(std::exchange(o.fd_, -1));
        return *this;
    }
    ~Fd() { reset(); }
    int get() const { return fd_; }
    void reset(int fd = -1);

private:
    int fd_;
};

struct Pipe {
    Fd read, write;
};
// A new pipe; throws if there is none.
Pipe make_pipe();

// ---- stderr -------------------------------------------------------------------------

// Redirects fd 2 into a temp file until stop() (or destruction).
class StderrCapture {
public:
    StderrCapture();
    ~StderrCapture() { stop(); }
    std::string stop(); // restores stderr, returns what was written
private:
    Fd saved_;
    Fd file_;
    std::string text_;
};

// ---- concurrent children --------------------------------------------------------------

// A forked child running fn; its text output (what fn returns) comes back
// through a pipe. Unlike ukeytest::run_in_child, several can run at once.
class Child {
public:
    explicit Child(const std::function<std::string()>& fn);
    ~Child(); // SIGKILLs and reaps a child still running
    pid_t pid() const { return pid_; }
    // Waits (killing it after `timeout`); returns its output. status():
    // "exit 0", "exit N", "signal N", "timeout".
    std::string wait(std::chrono::milliseconds timeout);
    const std::string& status() const { return status_; }
    bool exited_ok() const { return status_ == "exit 0"; }

private:
    pid_t pid_ = -1;
    Fd output_;
    std::string status_;
};

// A pipe both ends of which children inherit: children block in wait() until
// the parent calls release() (closes the write end), which wakes all of
// them at once.
class StartGate {
public:
    void child_side(); // in a child: close the inherited write end
    void wait() const; // in a child: block until released
    void release();    // in the parent
private:
    Pipe pipe_ = make_pipe();
};

// Children write one byte each when ready; the parent waits for n of them.
class ReadyPipe {
public:
    void signal() const; // in a child
    // In the parent: true once n bytes arrived, false after `timeout`.
    bool wait_for(int n, std::chrono::milliseconds timeout) const;

private:
    Pipe pipe_ = make_pipe();
};

} // namespace pintest
