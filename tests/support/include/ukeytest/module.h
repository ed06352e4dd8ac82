// Module: a dlopen()ed PKCS#11 module, plus small PKCS#11 conveniences.
//
// The helpers throw ukeytest::P11Error when a call they rely on fails, so a
// test can use them without checking every step; gtest reports the exception
// (with the CK_RV name) as a test failure.
#pragma once

#include "ukeytest/rv.h"

#include <ukey/pkcs11.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace ukeytest {

// Path of the ukey module under test: $UKEY_TEST_MODULE if set (lets the
// suites be pointed at another module, e.g. SoftHSM2, when developing), else
// the compile-time UKEY_MODULE_PATH passed by the caller.
std::string module_under_test(const char* compiled_in_path);

// Path of the system SoftHSM2 module (UKEY_SOFTHSM2_MODULE at configure time).
const char* softhsm2_module_path();

class Module {
public:
    // dlopen(path, RTLD_NOW | RTLD_LOCAL | dlopen_flags) and C_GetFunctionList.
    // The default keeps the library mapped after dlclose (RTLD_NODELETE) so
    // sanitizer reports stay symbolised; module state must then be reset by
    // C_Finalize, which is what PKCS#11 requires anyway.
    explicit Module(std::string path, int dlopen_flags = kKeepLoaded);
    ~Module();  // C_Finalize if initialize() succeeded and no finalize() yet
    Module(const Module&) = delete;
    Module& operator=(const Module&) = delete;

    static constexpr int kKeepLoaded = 0x01000;  // RTLD_NODELETE

    CK_FUNCTION_LIST* fl() const { return fl_; }
    CK_FUNCTION_LIST* operator->() const { return fl_; }
    const std::string& path() const { return path_; }
    void* handle() const { return handle_; }

    // dlsym() in this module; nullptr when absent.
    void* symbol(const char* name) const;

    // C_Initialize with CKF_OS_LOCKING_OK (the usual multi-threaded setup).
    CK_RV initialize();
    CK_RV initialize(CK_C_INITIALIZE_ARGS* args);
    CK_RV finalize();
    bool initialized() const { return initialized_; }

    // Forget the initialised state without calling C_Finalize (after fork()).
    void forget_initialized() { initialized_ = false; }

private:
    std::string path_;
    void* handle_ = nullptr;
    CK_FUNCTION_LIST* fl_ = nullptr;
    bool initialized_ = false;
};

// ---- small PKCS#11 conveniences (all throw P11Error on failure) ------------

// Blank-padded fixed-size field -> std::string without trailing blanks.
std::string trim_field(const CK_UTF8CHAR* field, size_t size);
template <size_t N>
std::string trim_field(const CK_UTF8CHAR (&field)[N])
{
    return trim_field(field, N);
}
// The 32-byte blank-padded label C_InitToken wants.
std::string padded_label(const std::string& label);

std::vector<CK_SLOT_ID> slot_list(CK_FUNCTION_LIST* fl, bool token_present);
CK_SLOT_INFO slot_info(CK_FUNCTION_LIST* fl, CK_SLOT_ID slot);
CK_TOKEN_INFO token_info(CK_FUNCTION_LIST* fl, CK_SLOT_ID slot);

// Slots (with a token) whose token label is `label`.
std::vector<CK_SLOT_ID> slots_with_label(CK_FUNCTION_LIST* fl, const std::string& label);
// The single slot whose token has `label`; throws if none or several.
CK_SLOT_ID slot_by_label(CK_FUNCTION_LIST* fl, const std::string& label);

CK_SESSION_HANDLE open_session(CK_FUNCTION_LIST* fl, CK_SLOT_ID slot, bool rw = true);
void login(CK_FUNCTION_LIST* fl, CK_SESSION_HANDLE session, CK_USER_TYPE user,
           const std::string& pin);

std::vector<CK_OBJECT_HANDLE> find_objects(CK_FUNCTION_LIST* fl, CK_SESSION_HANDLE session,
                                           std::vector<CK_ATTRIBUTE> templ);
// The single object of `cls` with CKA_LABEL == label; throws if none or several.
CK_OBJECT_HANDLE find_by_label(CK_FUNCTION_LIST* fl, CK_SESSION_HANDLE session,
                               CK_OBJECT_CLASS cls, const std::string& label);

std::vector<uint8_t> get_attribute(CK_FUNCTION_LIST* fl, CK_SESSION_HANDLE session,
                                   CK_OBJECT_HANDLE object, CK_ATTRIBUTE_TYPE type);

// Position of a function in CK_FUNCTION_LIST (0 = C_Initialize).
#define UKEYTEST_FN_INDEX(name) \
    ((offsetof(CK_FUNCTION_LIST, name) - offsetof(CK_FUNCTION_LIST, C_Initialize)) / sizeof(void*))

struct FunctionInfo {
    const char* name;
    size_t index;  // UKEYTEST_FN_INDEX
};
constexpr size_t kV240FunctionCount = 68;
// All 68, in CK_FUNCTION_LIST order.
extern const FunctionInfo kV240Functions[kV240FunctionCount];

// Function pointer `index` of a function list (as a generic pointer).
void* function_at(const CK_FUNCTION_LIST* fl, size_t index);
// A CK_FUNCTION_LIST whose entries are the module's exported symbols
// (dlsym by name); missing exports are left nullptr.
CK_FUNCTION_LIST exported_functions(const Module& m);
static_assert(sizeof(CK_FUNCTION_LIST) - offsetof(CK_FUNCTION_LIST, C_Initialize) ==
                  kV240FunctionCount * sizeof(void*),
              "CK_FUNCTION_LIST should hold exactly the 68 v2.40 functions");

}  // namespace ukeytest
