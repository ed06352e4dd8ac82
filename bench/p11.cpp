#include "p11.h"

#include "token/ckr_name.h"

#include <dlfcn.h>

#include <cstdio>
#include <iterator>

namespace ukey_bench {

namespace {

std::string rv_text(CK_RV rv) {
    char hex[32];
    std::snprintf(hex, sizeof hex, " (0x%08lx)", static_cast<unsigned long>(rv));
    return ukey::ckr_name(rv) + hex;
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

}  // namespace

void check(CK_RV rv, std::string_view where, std::string_view call) {
    if (rv != CKR_OK) {
        throw Failure(std::string(where) + ": " + std::string(call) + " failed: " + rv_text(rv));
    }
}

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

CK_SESSION_HANDLE open_session(const Module& m, CK_SLOT_ID slot, CK_FLAGS extra) {
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

}  // namespace ukey_bench
