#include "ukeytest/module.h"

#include "token/functions.h"

#include <dlfcn.h>

#include <cstdlib>
#include <cstring>
#include <stdexcept>

namespace ukeytest {

static_assert(Module::kKeepLoaded == RTLD_NODELETE);

std::string module_under_test(const char* compiled_in_path)
{
    if (const char* p = std::getenv("UKEY_TEST_MODULE"); p && *p)
        return p;
    return compiled_in_path;
}

const char* softhsm2_module_path()
{
    return UKEYTEST_SOFTHSM2_MODULE;
}

Module::Module(std::string path, int dlopen_flags) : path_(std::move(path))
{
    handle_ = dlopen(path_.c_str(), RTLD_NOW | RTLD_LOCAL | dlopen_flags);
    if (!handle_)
        throw std::runtime_error("dlopen(" + path_ + "): " + dlerror());
    auto get = reinterpret_cast<CK_C_GetFunctionList>(dlsym(handle_, "C_GetFunctionList"));
    if (!get) {
        dlclose(handle_);
        throw std::runtime_error(path_ + " has no C_GetFunctionList");
    }
    CK_RV rv = get(&fl_);
    if (rv != CKR_OK || !fl_) {
        dlclose(handle_);
        throw P11Error("C_GetFunctionList of " + path_, rv == CKR_OK ? CKR_GENERAL_ERROR : rv);
    }
}

Module::~Module()
{
    if (initialized_)
        fl_->C_Finalize(nullptr);
    dlclose(handle_);
}

void* Module::symbol(const char* name) const
{
    return dlsym(handle_, name);
}

CK_RV Module::initialize()
{
    CK_C_INITIALIZE_ARGS args{};
    args.flags = CKF_OS_LOCKING_OK;
    return initialize(&args);
}

CK_RV Module::initialize(CK_C_INITIALIZE_ARGS* args)
{
    CK_RV rv = fl_->C_Initialize(args);
    if (rv == CKR_OK)
        initialized_ = true;
    return rv;
}

CK_RV Module::finalize()
{
    CK_RV rv = fl_->C_Finalize(nullptr);
    if (rv == CKR_OK || rv == CKR_CRYPTOKI_NOT_INITIALIZED)
        initialized_ = false;
    return rv;
}

// ---- conveniences -----------------------------------------------------------

std::string trim_field(const CK_UTF8CHAR* field, size_t size)
{
    std::string s(reinterpret_cast<const char*>(field), size);
    auto end = s.find_last_not_of(' ');
    s.erase(end == std::string::npos ? 0 : end + 1);
    // Some modules NUL-terminate instead of blank-padding.
    if (auto nul = s.find('\0'); nul != std::string::npos)
        s.erase(nul);
    return s;
}

std::string padded_label(const std::string& label)
{
    if (label.size() > 32)
        throw std::invalid_argument("token label longer than 32 bytes: " + label);
    std::string s = label;
    s.resize(32, ' ');
    return s;
}

std::vector<CK_SLOT_ID> slot_list(CK_FUNCTION_LIST* fl, bool token_present)
{
    for (;;) {
        CK_ULONG count = 0;
        check(fl->C_GetSlotList(token_present, nullptr, &count), "C_GetSlotList(count)");
        std::vector<CK_SLOT_ID> slots(count);
        CK_RV rv = fl->C_GetSlotList(token_present, slots.data(), &count);
        if (rv == CKR_BUFFER_TOO_SMALL)
            continue;  // slots appeared in between
        check(rv, "C_GetSlotList");
        slots.resize(count);
        return slots;
    }
}

CK_SLOT_INFO slot_info(CK_FUNCTION_LIST* fl, CK_SLOT_ID slot)
{
    CK_SLOT_INFO info{};
    check(fl->C_GetSlotInfo(slot, &info), "C_GetSlotInfo");
    return info;
}

CK_TOKEN_INFO token_info(CK_FUNCTION_LIST* fl, CK_SLOT_ID slot)
{
    CK_TOKEN_INFO info{};
    check(fl->C_GetTokenInfo(slot, &info), "C_GetTokenInfo");
    return info;
}

std::vector<CK_SLOT_ID> slots_with_label(CK_FUNCTION_LIST* fl, const std::string& label)
{
    std::vector<CK_SLOT_ID> found;
    for (CK_SLOT_ID slot : slot_list(fl, true)) {
        CK_TOKEN_INFO ti = token_info(fl, slot);
        if ((ti.flags & CKF_TOKEN_INITIALIZED) && trim_field(ti.label) == label)
            found.push_back(slot);
    }
    return found;
}

CK_SLOT_ID slot_by_label(CK_FUNCTION_LIST* fl, const std::string& label)
{
    auto found = slots_with_label(fl, label);
    if (found.size() != 1)
        throw std::runtime_error("expected exactly one token labelled '" + label + "', found " +
                                 std::to_string(found.size()));
    return found.front();
}

CK_SESSION_HANDLE open_session(CK_FUNCTION_LIST* fl, CK_SLOT_ID slot, bool rw)
{
    CK_SESSION_HANDLE session = CK_INVALID_HANDLE;
    CK_FLAGS flags = CKF_SERIAL_SESSION | (rw ? CKF_RW_SESSION : 0);
    check(fl->C_OpenSession(slot, flags, nullptr, nullptr, &session), "C_OpenSession");
    return session;
}

void login(CK_FUNCTION_LIST* fl, CK_SESSION_HANDLE session, CK_USER_TYPE user,
           const std::string& pin)
{
    std::string p = pin;
    check(fl->C_Login(session, user, reinterpret_cast<CK_UTF8CHAR*>(p.data()), p.size()),
          "C_Login");
}

std::vector<CK_OBJECT_HANDLE> find_objects(CK_FUNCTION_LIST* fl, CK_SESSION_HANDLE session,
                                           std::vector<CK_ATTRIBUTE> templ)
{
    check(fl->C_FindObjectsInit(session, templ.data(), templ.size()), "C_FindObjectsInit");
    std::vector<CK_OBJECT_HANDLE> all;
    for (;;) {
        CK_OBJECT_HANDLE batch[16];
        CK_ULONG n = 0;
        CK_RV rv = fl->C_FindObjects(session, batch, 16, &n);
        if (rv != CKR_OK) {
            fl->C_FindObjectsFinal(session);
            throw P11Error("C_FindObjects", rv);
        }
        if (n == 0)
            break;
        all.insert(all.end(), batch, batch + n);
    }
    check(fl->C_FindObjectsFinal(session), "C_FindObjectsFinal");
    return all;
}

CK_OBJECT_HANDLE find_by_label(CK_FUNCTION_LIST* fl, CK_SESSION_HANDLE session,
                               CK_OBJECT_CLASS cls, const std::string& label)
{
    std::string l = label;
    std::vector<CK_ATTRIBUTE> templ = {
        {CKA_CLASS, &cls, sizeof cls},
        {CKA_LABEL, l.data(), l.size()},
    };
    auto found = find_objects(fl, session, templ);
    if (found.size() != 1)
        throw std::runtime_error("expected exactly one object labelled '" + label + "', found " +
                                 std::to_string(found.size()));
    return found.front();
}

std::vector<uint8_t> get_attribute(CK_FUNCTION_LIST* fl, CK_SESSION_HANDLE session,
                                   CK_OBJECT_HANDLE object, CK_ATTRIBUTE_TYPE type)
{
    CK_ATTRIBUTE a{type, nullptr, 0};
    check(fl->C_GetAttributeValue(session, object, &a, 1), "C_GetAttributeValue(size)");
    if (a.ulValueLen == CK_UNAVAILABLE_INFORMATION)
        throw P11Error("C_GetAttributeValue(size)", CKR_ATTRIBUTE_TYPE_INVALID);
    std::vector<uint8_t> value(a.ulValueLen);
    a.pValue = value.data();
    check(fl->C_GetAttributeValue(session, object, &a, 1), "C_GetAttributeValue");
    value.resize(a.ulValueLen);
    return value;
}

}  // namespace ukeytest

namespace ukeytest {

// The rows of token/functions.h, the one list the module is generated from
// (p11/main.cpp checks at compile time that they are in struct order).
const FunctionInfo kV240Functions[kV240FunctionCount] = {
#define UKEYTEST_X(stub, route, name, params, args) {"C_" #name, UKEYTEST_FN_INDEX(C_##name)},
    UKEY_PKCS11_FUNCTIONS(UKEYTEST_X)
#undef UKEYTEST_X
};
static_assert(sizeof kV240Functions / sizeof kV240Functions[0] == kV240FunctionCount);

void* function_at(const CK_FUNCTION_LIST* fl, size_t index)
{
    void* p = nullptr;
    std::memcpy(&p,
                reinterpret_cast<const char*>(fl) + offsetof(CK_FUNCTION_LIST, C_Initialize) +
                    index * sizeof(void*),
                sizeof p);
    return p;
}

CK_FUNCTION_LIST exported_functions(const Module& m)
{
    CK_FUNCTION_LIST fl{};
    fl.version = m.fl()->version;
    for (const auto& f : kV240Functions) {
        void* p = m.symbol(f.name);
        std::memcpy(reinterpret_cast<char*>(&fl) + offsetof(CK_FUNCTION_LIST, C_Initialize) +
                        f.index * sizeof(void*),
                    &p, sizeof p);
    }
    return fl;
}

}  // namespace ukeytest
