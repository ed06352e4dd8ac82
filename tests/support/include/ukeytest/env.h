// TestEnv: a private, self-cleaning SoftHSM2 + ukey configuration.
//
//   <tmp>/ukey-test-XXXXXX/            (mode 0700, removed on destruction;
//                                       <tmp> = $UKEY_TEST_TMPDIR, $TMPDIR,
//                                       /dev/shm if writable, else /tmp)
//     ukey.conf                        state_dir + one [[backend]] per backend
//     state/                           state_dir (created, 0700)
//     backend-<name>/softhsm2.conf     tokendir, file object store, log ERROR
//     backend-<name>/tokens/
//     backend-<name>/libsofthsm2.so    only for the 2nd, 3rd... backend, see below
//
// UKEY_CONF and the SoftHSM2 configuration variables are set for the lifetime
// of the TestEnv and restored afterwards. Tokens are initialised by loading
// SoftHSM2 in-process (C_InitToken + C_InitPIN); PINs never appear on a
// command line or in a file.
//
// Several SoftHSM2 backends in one process: SoftHSM2 finds its configuration
// only through the SOFTHSM2_CONF environment variable (or fixed default
// paths), read on each C_Initialize, so two instances would both read the
// same file and see the same token directory. A copy of libsofthsm2.so at
// another path is a separate dlopen() instance (separate globals) but still
// reads SOFTHSM2_CONF. TestEnv therefore gives backend i > 0 a private copy of
// libsofthsm2.so in which the (same-length) string "SOFTHSM2_CONF" is replaced
// by "SOFTHSM2_Cnnn"; that copy reads its own variable and so its own token
// directory. Backend 0 always uses the system library and SOFTHSM2_CONF.
//
// Not thread-safe (it changes the process environment); create it before
// loading/initialising the module under test and destroy it after.
#pragma once

#include "ukeytest/files.h"

#include <ukey/pkcs11.h>

#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace ukeytest {

struct TokenSpec {
    std::string label = "ukey-test";
    std::string so_pin = "so-pin-1234";
    std::string user_pin = "user-1234";
};

struct BackendSpec {
    std::string name = "softhsm";
    std::vector<TokenSpec> tokens = {TokenSpec{}};
    std::string pin_counter = "ukey";
    // Extra lines appended to this backend's softhsm2.conf.
    std::string softhsm_conf_extra;
};

// A token initialised by TestEnv, as SoftHSM2 itself reports it.
struct TokenRecord {
    size_t backend = 0;  // index into TestEnv::backends()
    TokenSpec spec;
    std::string serial;        // CK_TOKEN_INFO.serialNumber (trimmed)
    std::string manufacturer;  // CK_TOKEN_INFO.manufacturerID (trimmed)
    std::string model;         // CK_TOKEN_INFO.model (trimmed)
};

class ScopedEnvVar {
public:
    ScopedEnvVar(std::string name, const std::optional<std::string>& value);
    ~ScopedEnvVar();
    ScopedEnvVar(const ScopedEnvVar&) = delete;
    ScopedEnvVar& operator=(const ScopedEnvVar&) = delete;

private:
    std::string name_;
    std::optional<std::string> old_;
};

class TestEnv {
public:
    // One backend "softhsm" with one token "ukey-test".
    TestEnv();
    explicit TestEnv(std::vector<BackendSpec> backends);
    ~TestEnv();
    TestEnv(const TestEnv&) = delete;
    TestEnv& operator=(const TestEnv&) = delete;

    const std::filesystem::path& dir() const { return dir_->path(); }
    std::filesystem::path ukey_conf_path() const { return dir() / "ukey.conf"; }
    std::filesystem::path state_dir() const { return dir() / "state"; }

    const std::vector<BackendSpec>& backends() const { return backends_; }
    // The SoftHSM2 library backend i loads (system path for i == 0).
    std::filesystem::path softhsm_library(size_t backend) const;
    std::filesystem::path softhsm_conf(size_t backend) const;
    std::filesystem::path token_dir(size_t backend) const;
    // Environment variable backend i's SoftHSM2 reads its config path from.
    std::string softhsm_conf_variable(size_t backend) const;

    const std::vector<TokenRecord>& tokens() const { return tokens_; }
    const TokenRecord& token(const std::string& label) const;  // throws if absent

    // ukey.conf as TestEnv writes it for the current backends (in `order`
    // when given, e.g. {1, 0} to list the backends the other way round).
    std::string ukey_conf_text(const std::vector<size_t>& order = {}) const;
    // Replace ukey.conf (broken-config tests); rewrite_ukey_conf() restores it.
    void write_ukey_conf(const std::string& text) const;
    void rewrite_ukey_conf(const std::vector<size_t>& order = {}) const;
    // Point UKEY_CONF elsewhere (or unset it with std::nullopt).
    void set_ukey_conf_variable(const std::optional<std::string>& value);

    // Initialise another token in backend i (SoftHSM2 must not be initialised
    // by anyone else in this process at that moment, i.e. the module under
    // test must be finalised).
    const TokenRecord& add_token(size_t backend, const TokenSpec& spec);

    // Run `fn` with backend i's SoftHSM2 loaded and C_Initialize'd (then
    // C_Finalize'd). Same precondition as add_token().
    void with_softhsm(size_t backend, const std::function<void(CK_FUNCTION_LIST*)>& fn) const;

private:
    void prepare_backend(size_t i);
    TokenRecord init_token(CK_FUNCTION_LIST* fl, size_t backend, const TokenSpec& spec) const;

    std::unique_ptr<TempDir> dir_;
    std::vector<BackendSpec> backends_;
    std::vector<TokenRecord> tokens_;
    std::vector<std::unique_ptr<ScopedEnvVar>> env_;
};

}  // namespace ukeytest
