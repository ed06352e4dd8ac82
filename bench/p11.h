// ukey-bench's PKCS#11 side: the two modules it loads, the benchmark token
// and its RSA-2048 key, and every CK_RV checked one way.
#pragma once

#include <ukey/pkcs11.h>

#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace ukey_bench {

// Throwaway credentials for the benchmark's private token. Never printed.
inline constexpr std::string_view kSoPin = "bench-so-pin-8413";
inline constexpr std::string_view kUserPin = "bench-user-pin-2967";
inline constexpr std::string_view kTokenLabel = "ukey-bench";
inline constexpr std::string_view kKeyLabel = "ukey-bench-rsa2048";
inline constexpr unsigned char kKeyId[] = {0x75, 0x6b, 0x65, 0x79, 0x62, 0x01};

class Failure : public std::runtime_error {
   public:
    using std::runtime_error::runtime_error;
};

// Every CK_RV goes through here; `where` names the module and the call.
void check(CK_RV rv, std::string_view where, std::string_view call);

struct Module {
    std::string role;  // "SoftHSM direct" or "via ukey"; used in messages
    std::string path;
    void* handle = nullptr;
    CK_FUNCTION_LIST_PTR fl = nullptr;
};

// The handles are intentionally never dlclose()d: the ukey module holds its
// own reference to SoftHSM2, and unloading libraries that use OpenSSL in the
// middle of a process is a source of trouble we do not want to measure.
void load(Module& m);
void initialize(const Module& m);
// The slot holding the benchmark token: found by label; if the module
// renames tokens, the only slot with a token will do.
CK_SLOT_ID find_bench_slot(const Module& m);
void login_user(const Module& m, CK_SESSION_HANDLE s);
CK_SESSION_HANDLE open_session(const Module& m, CK_SLOT_ID slot, CK_FLAGS extra = 0);
CK_OBJECT_HANDLE find_key(const Module& m, CK_SESSION_HANDLE s, CK_OBJECT_CLASS cls);
// One-time token setup, through SoftHSM2 directly: initialise the empty
// slot's token, set the user PIN and generate the RSA-2048 key pair.
void setup_token(const Module& m);

}  // namespace ukey_bench
