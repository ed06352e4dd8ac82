#include "client/module.h"

#include "client/messages.h"

#include "token/config.h"
#include "token/file_trust.h"

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <string>

#include <p11-kit/uri.h>
#include <dlfcn.h>

#ifndef UKEY_DEFAULT_MODULE
#define UKEY_DEFAULT_MODULE "/usr/lib/x86_64-linux-gnu/pkcs11/libukey-pkcs11.so"
#endif

namespace ukey::client {

std::string default_module_path()
{
    const char* env = secure_getenv("UKEY_MODULE");
    if (env && *env)
        return env;
#ifdef UKEY_MODULE_FROM_PROGRAM
    // Installed under another prefix than configured (`cmake --install
    // --prefix`, a relocated package): the module beside this program.
    std::error_code ec;
    const auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
    if (!ec && self.is_absolute()) {
        const auto beside = (self.parent_path() / UKEY_MODULE_FROM_PROGRAM).lexically_normal();
        if (std::filesystem::is_regular_file(beside, ec))
            return beside.string();
    }
#endif
    return UKEY_DEFAULT_MODULE;
}

Error ck_error(CK_RV rv, const std::string& doing)
{
    return Error{rv, doing + ": " + explain(rv) + " (" + ckr_name(rv) + ")"};
}

Result<Module::Opened> Module::open(const std::string& path)
{
    // The same check as for backends: the module's code runs in our process.
    auto file = trusted_file(path, "ukey module");
    if (!file)
        return Error{CKR_FUNCTION_FAILED, is_refusal(file.error())
                                              ? file.error().message
                                              : "cannot load the ukey module " + file.error().message +
                                                    " (is ukey installed? set UKEY_MODULE or --module)"};
    dlerror();
    void* dl = dlopen(file->c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!dl) {
        const char* why = dlerror();
        return Error{CKR_FUNCTION_FAILED, "cannot load the ukey module " + path + ": " + (why ? why : "unknown") +
                                              " (is ukey installed? set UKEY_MODULE or --module)"};
    }
    auto get = reinterpret_cast<CK_C_GetFunctionList>(dlsym(dl, "C_GetFunctionList"));
    CK_FUNCTION_LIST* fl = nullptr;
    if (!get || get(&fl) != CKR_OK || !fl) {
        dlclose(dl);
        return Error{CKR_FUNCTION_FAILED, path + " is not a PKCS#11 module"};
    }
    return Opened{dl, fl};
}

namespace {

// C_Initialize with OS locking; an error in the words of `what`.
Result<void> start(CK_FUNCTION_LIST* fl, const std::string& what)
{
    CK_C_INITIALIZE_ARGS args{};
    args.flags = CKF_OS_LOCKING_OK;
    CK_RV rv = fl->C_Initialize(&args);
    if (rv == CKR_OK)
        return {};
    return Error{rv, "cannot start " + what + ": " +
                         std::string(rv == CKR_FUNCTION_FAILED
                                         ? "its configuration or a backend is broken (the log line above says which)"
                                         : explain(rv)) +
                         " (" + ckr_name(rv) + ")"};
}

} // namespace

Result<std::unique_ptr<Module>> Module::load(const std::string& path)
{
    auto opened = open(path);
    if (!opened)
        return opened.error();
    auto [dl, fl] = *opened;
    if (auto r = start(fl, "the ukey module"); !r) {
        dlclose(dl);
        return r.error();
    }
    const UKEY_FUNCTION_LIST* vendor = nullptr;
    if (auto gi = reinterpret_cast<CK_C_GetInterface>(dlsym(dl, "C_GetInterface"))) {
        CK_INTERFACE_PTR i = nullptr;
        if (gi(reinterpret_cast<CK_UTF8CHAR_PTR>(const_cast<char*>(UKEY_VENDOR_INTERFACE)), nullptr, &i, 0) ==
                CKR_OK &&
            i)
            vendor = static_cast<const UKEY_FUNCTION_LIST*>(i->pFunctionList);
    }
    return std::unique_ptr<Module>(new Module(path, dl, fl, vendor));
}

Result<std::unique_ptr<Module>> Module::connect_service(const std::filesystem::path& socket)
{
    // p11-kit-client.so reads the address when it is initialised.
    const std::string address = "unix:path=" + socket.string();
    setenv("P11_KIT_SERVER_ADDRESS", address.c_str(), 1);
    const std::string path = (system_module_dir() / "p11-kit-client.so").string();
    auto opened = open(path);
    if (!opened)
        return Error{opened.error().rv, "service mode: " + opened.error().message + " (install p11-kit-modules)"};
    auto [dl, fl] = *opened;
    if (auto r = start(fl, "p11-kit's client of the ukey service at " + socket.string()); !r) {
        dlclose(dl);
        return r.error();
    }
    return std::unique_ptr<Module>(new Module(path, dl, fl, service_vendor(socket)));
}

Module::~Module()
{
    fl_->C_Finalize(nullptr);
    dlclose(dl_);
}

Result<std::vector<CK_SLOT_ID>> Module::slots(bool token_present) const
{
    for (int attempt = 0; attempt < 4; ++attempt) {
        CK_ULONG n = 0;
        CK_RV rv = fl_->C_GetSlotList(token_present ? CK_TRUE : CK_FALSE, nullptr, &n);
        if (rv != CKR_OK)
            return ck_error(rv, "listing the Keys");
        std::vector<CK_SLOT_ID> ids(n);
        rv = fl_->C_GetSlotList(token_present ? CK_TRUE : CK_FALSE, ids.data(), &n);
        if (rv == CKR_BUFFER_TOO_SMALL)
            continue;
        if (rv != CKR_OK)
            return ck_error(rv, "listing the Keys");
        ids.resize(n);
        return ids;
    }
    return ck_error(CKR_BUFFER_TOO_SMALL, "listing the Keys");
}

Result<KeyInfo> key_info(const Module& m, CK_SLOT_ID slot)
{
    KeyInfo k;
    k.slot = slot;
    if (CK_RV rv = m.f()->C_GetSlotInfo(slot, &k.slot_info); rv != CKR_OK)
        return ck_error(rv, "reading the reader");
    if (CK_RV rv = m.f()->C_GetTokenInfo(slot, &k.token); rv != CKR_OK)
        return ck_error(rv, "reading the Key");
    if (m.vendor()) {
        UKEY_SLOT_BACKEND b{};
        if (m.vendor()->C_UkeyGetSlotBackend(slot, &b) == CKR_OK)
            k.backend = b;
        UKEY_PIN_STATUS s{};
        if (k.initialized() && m.vendor()->C_UkeyGetPinStatus(slot, &s) == CKR_OK)
            k.pin = s;
    }
    return k;
}

bool key_matches(const KeyInfo& k, const std::string& spec, P11KitUri* uri)
{
    if (uri) {
        CK_TOKEN_INFO t = k.token;
        return p11_kit_uri_match_token_info(uri, &t) == 1;
    }
    if (k.initialized() && (k.label() == spec || k.serial() == spec))
        return true;
    // A slot number (decimal, 0x hex or 0 octal), the whole spec.
    errno = 0;
    char* end = nullptr;
    const unsigned long id = std::strtoul(spec.c_str(), &end, 0);
    return end != spec.c_str() && end == spec.c_str() + spec.size() && errno == 0 && id == k.slot;
}

Result<std::vector<KeyInfo>> list_keys(const Module& m)
{
    auto ids = m.slots(true);
    if (!ids)
        return ids.error();
    std::vector<KeyInfo> out;
    for (CK_SLOT_ID id : *ids) {
        auto k = key_info(m, id);
        if (k)
            out.push_back(*k);
        else if (k.error().rv != CKR_TOKEN_NOT_PRESENT) // pulled out meanwhile
            return k.error();
    }
    return out;
}

Result<std::unique_ptr<Session>> Session::open(const Module& m, CK_SLOT_ID slot, bool read_write)
{
    CK_SESSION_HANDLE h = CK_INVALID_HANDLE;
    CK_FLAGS flags = CKF_SERIAL_SESSION | (read_write ? CKF_RW_SESSION : 0);
    if (CK_RV rv = m.f()->C_OpenSession(slot, flags, nullptr, nullptr, &h); rv != CKR_OK)
        return ck_error(rv, "opening the Key");
    return std::unique_ptr<Session>(new Session(m, slot, h));
}

Session::~Session()
{
    if (logged_in_)
        m_.f()->C_Logout(h_);
    m_.f()->C_CloseSession(h_);
}

CK_RV Session::login(CK_USER_TYPE who, Secret& pin)
{
    CK_RV rv = m_.f()->C_Login(h_, who, pin.data(), pin.size());
    if (rv == CKR_OK)
        logged_in_ = true;
    return rv == CKR_USER_ALREADY_LOGGED_IN ? CKR_OK : rv;
}

CK_RV Session::logout()
{
    logged_in_ = false;
    return m_.f()->C_Logout(h_);
}

Result<std::vector<CK_OBJECT_HANDLE>> Session::find(std::vector<CK_ATTRIBUTE> templ) const
{
    if (CK_RV rv = f()->C_FindObjectsInit(h_, templ.data(), templ.size()); rv != CKR_OK)
        return ck_error(rv, "searching the Key");
    std::vector<CK_OBJECT_HANDLE> out;
    CK_OBJECT_HANDLE batch[64];
    CK_ULONG n = 0;
    CK_RV rv;
    while ((rv = f()->C_FindObjects(h_, batch, 64, &n)) == CKR_OK && n > 0)
        out.insert(out.end(), batch, batch + n);
    f()->C_FindObjectsFinal(h_);
    if (rv != CKR_OK)
        return ck_error(rv, "searching the Key");
    return out;
}

Result<std::optional<std::vector<unsigned char>>> Session::attribute(CK_OBJECT_HANDLE o, CK_ATTRIBUTE_TYPE type) const
{
    CK_ATTRIBUTE a{type, nullptr, 0};
    CK_RV rv = f()->C_GetAttributeValue(h_, o, &a, 1);
    if (rv == CKR_ATTRIBUTE_TYPE_INVALID || rv == CKR_ATTRIBUTE_SENSITIVE || a.ulValueLen == CK_UNAVAILABLE_INFORMATION)
        return std::optional<std::vector<unsigned char>>();
    if (rv != CKR_OK)
        return ck_error(rv, "reading an object on the Key");
    std::vector<unsigned char> v(a.ulValueLen);
    a.pValue = v.data();
    if ((rv = f()->C_GetAttributeValue(h_, o, &a, 1)) != CKR_OK)
        return ck_error(rv, "reading an object on the Key");
    v.resize(a.ulValueLen);
    return std::optional<std::vector<unsigned char>>(std::move(v));
}

Result<CK_ULONG> Session::ulong_attribute(CK_OBJECT_HANDLE o, CK_ATTRIBUTE_TYPE type) const
{
    CK_ULONG v = 0;
    CK_ATTRIBUTE a{type, &v, sizeof v};
    if (CK_RV rv = f()->C_GetAttributeValue(h_, o, &a, 1); rv != CKR_OK)
        return ck_error(rv, "reading an object on the Key");
    return v;
}

Result<std::string> Session::string_attribute(CK_OBJECT_HANDLE o, CK_ATTRIBUTE_TYPE type) const
{
    auto v = attribute(o, type);
    if (!v)
        return v.error();
    if (!v->has_value())
        return std::string();
    return std::string((*v)->begin(), (*v)->end());
}

} // namespace ukey::client
