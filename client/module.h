// The client side of PKCS#11, for ukey's own tools: a module loaded and
// initialised (Module), a session (Session), each an RAII owner of its
// handle, with typed results (the Botan idea).
#pragma once

#include "client/secret.h"

#include "token/result.h"

#include <ukey/pkcs11.h>
#include <ukey/vendor.h>

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

struct p11_kit_uri; // P11KitUri, <p11-kit/uri.h>

namespace ukey::client {

// Where the CLI finds libukey-pkcs11.so: $UKEY_MODULE, else the installed path.
std::string default_module_path();

// ukey's vendor functions asked of the ukey service on `socket` (one
// connection, kept; tools/ukeyd/serve_vendor.h): the PIN counts and the
// backend of a slot. Setting limits and transport PINs is the admin's, as
// the service user: CKR_FUNCTION_NOT_SUPPORTED here. One socket per
// process: the first call's.
const UKEY_FUNCTION_LIST* service_vendor(const std::filesystem::path& socket);

class Module {
public:
    // dlopen + C_GetFunctionList + C_Initialize (OS locking).
    static Result<std::unique_ptr<Module>> load(const std::string& path);
    // The same without C_Initialize, for a process that hands the module to
    // p11-kit's RPC server (ukeyd's serving child), which initialises it on
    // its client's word. Stays loaded until the process ends.
    struct Opened {
        void* dl;
        CK_FUNCTION_LIST* fl;
    };
    static Result<Opened> open(const std::string& path);
    // Service mode (docs/service-mode.md): the Keys ukeyd serves on
    // `socket`, through p11-kit-client.so, with the vendor functions that
    // p11-kit's RPC does not carry asked over the same socket
    // (service_vendor).
    static Result<std::unique_ptr<Module>> connect_service(const std::filesystem::path& socket);
    ~Module();
    Module(const Module&) = delete;
    Module& operator=(const Module&) = delete;

    CK_FUNCTION_LIST* f() const { return fl_; }
    // ukey's vendor interface; nullptr for a module that is not ukey.
    const UKEY_FUNCTION_LIST* vendor() const { return vendor_; }
    const std::string& path() const { return path_; }

    Result<std::vector<CK_SLOT_ID>> slots(bool token_present) const;

private:
    Module(std::string path, void* dl, CK_FUNCTION_LIST* fl, const UKEY_FUNCTION_LIST* vendor)
        : path_(std::move(path)), dl_(dl), fl_(fl), vendor_(vendor) {}
    std::string path_;
    void* dl_;
    CK_FUNCTION_LIST* fl_;
    const UKEY_FUNCTION_LIST* vendor_;
};

// A text field of a PKCS#11 struct without its blank padding.
template <std::size_t N>
std::string text(const CK_UTF8CHAR (&field)[N])
{
    std::size_t n = N;
    while (n > 0 && (field[n - 1] == ' ' || field[n - 1] == '\0'))
        --n;
    return std::string(reinterpret_cast<const char*>(field), n);
}

// What one Key looks like from the outside.
struct KeyInfo {
    CK_SLOT_ID slot = 0;
    CK_SLOT_INFO slot_info{};
    CK_TOKEN_INFO token{};
    std::optional<UKEY_PIN_STATUS> pin;       // from ukey's vendor interface
    std::optional<UKEY_SLOT_BACKEND> backend; // likewise
    std::string label() const { return text(token.label); }
    std::string serial() const { return text(token.serialNumber); }
    std::string manufacturer() const { return text(token.manufacturerID); }
    std::string model() const { return text(token.model); }
    std::string reader() const { return text(slot_info.slotDescription); }
    bool initialized() const { return token.flags & CKF_TOKEN_INITIALIZED; }
    std::string backend_name() const { return backend ? text(backend->name) : std::string(); }
};

// Whether a Key is the one a user named: a parsed RFC 7512 URI (`uri`, when
// the spec was one), else its label or serial (initialised Keys only), else
// its slot number.
bool key_matches(const KeyInfo& k, const std::string& spec, ::p11_kit_uri* uri);

// Every slot holding a token.
Result<std::vector<KeyInfo>> list_keys(const Module& m);
Result<KeyInfo> key_info(const Module& m, CK_SLOT_ID slot);

class Session {
public:
    static Result<std::unique_ptr<Session>> open(const Module& m, CK_SLOT_ID slot, bool read_write);
    ~Session();
    Session(const Session&) = delete;
    Session& operator=(const Session&) = delete;

    CK_SESSION_HANDLE handle() const { return h_; }
    CK_FUNCTION_LIST* f() const { return m_.f(); }
    const Module& module() const { return m_; }
    CK_SLOT_ID slot() const { return slot_; }

    CK_RV login(CK_USER_TYPE who, Secret& pin);
    CK_RV logout();

    Result<std::vector<CK_OBJECT_HANDLE>> find(std::vector<CK_ATTRIBUTE> templ) const;
    // One attribute's bytes; an empty optional when the object lacks it.
    Result<std::optional<std::vector<unsigned char>>> attribute(CK_OBJECT_HANDLE o, CK_ATTRIBUTE_TYPE type) const;
    Result<CK_ULONG> ulong_attribute(CK_OBJECT_HANDLE o, CK_ATTRIBUTE_TYPE type) const;
    Result<std::string> string_attribute(CK_OBJECT_HANDLE o, CK_ATTRIBUTE_TYPE type) const;

private:
    Session(const Module& m, CK_SLOT_ID slot, CK_SESSION_HANDLE h) : m_(m), slot_(slot), h_(h) {}
    const Module& m_;
    CK_SLOT_ID slot_;
    CK_SESSION_HANDLE h_;
    bool logged_in_ = false;
};

// A CK_RV that is not CKR_OK as an Error with its explanation.
Error ck_error(CK_RV rv, const std::string& doing);

} // namespace ukey::client
