// ukey-calls: makes N calls of one PKCS#11 function through a module, for
// counting instructions per call under callgrind (bench/callgrind.sh runs it
// with N and with 0 calls and divides the difference by N): timings on these
// machines vary by +-50 %, instruction counts do not.
//
//   ukey-calls setup MODULE                  a token "calls", its user PIN, an RSA-2048 key
//   ukey-calls run MODULE FUNCTION N         FUNCTION: GetSessionInfo, GetAttributeValue,
//                                            Digest, Sign, Login
// MODULE is SoftHSM2 itself or libukey-pkcs11.so in front of it; the caller
// sets SOFTHSM2_CONF (and UKEY_CONF). The PINs are throwaway constants.
#include <ukey/pkcs11.h>

#include <dlfcn.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

CK_FUNCTION_LIST* fl;
const char so_pin[] = "calls-so-1234";
const char user_pin[] = "calls-user-1234";
CK_BYTE key_id[] = {0xca, 0x11};

void must(CK_RV rv, const char* what)
{
    if (rv != CKR_OK) {
        std::fprintf(stderr, "ukey-calls: %s: CK_RV 0x%lx\n", what, static_cast<unsigned long>(rv));
        std::exit(1);
    }
}

CK_UTF8CHAR_PTR pin(const char* p)
{
    return reinterpret_cast<CK_UTF8CHAR_PTR>(const_cast<char*>(p));
}

void load(const char* path)
{
    void* h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        std::fprintf(stderr, "ukey-calls: %s\n", dlerror());
        std::exit(1);
    }
    auto get = reinterpret_cast<CK_C_GetFunctionList>(dlsym(h, "C_GetFunctionList"));
    must(get ? get(&fl) : CKR_GENERAL_ERROR, "C_GetFunctionList");
    CK_C_INITIALIZE_ARGS args{};
    args.flags = CKF_OS_LOCKING_OK;
    must(fl->C_Initialize(&args), "C_Initialize");
}

// The slot of the token labelled "calls", or of the first token when setting up.
CK_SLOT_ID find_slot(bool uninitialised)
{
    CK_ULONG n = 0;
    must(fl->C_GetSlotList(CK_TRUE, nullptr, &n), "C_GetSlotList");
    std::vector<CK_SLOT_ID> slots(n);
    must(fl->C_GetSlotList(CK_TRUE, slots.data(), &n), "C_GetSlotList");
    for (CK_SLOT_ID s : slots) {
        CK_TOKEN_INFO ti;
        if (fl->C_GetTokenInfo(s, &ti) != CKR_OK)
            continue;
        if (uninitialised ? !(ti.flags & CKF_TOKEN_INITIALIZED) : std::memcmp(ti.label, "calls ", 6) == 0)
            return s;
    }
    std::fprintf(stderr, "ukey-calls: no %s token\n", uninitialised ? "empty" : "\"calls\"");
    std::exit(1);
}

void setup()
{
    CK_SLOT_ID slot = find_slot(true);
    CK_UTF8CHAR label[32];
    std::memset(label, ' ', sizeof label);
    std::memcpy(label, "calls", 5);
    must(fl->C_InitToken(slot, pin(so_pin), std::strlen(so_pin), label), "C_InitToken");
    slot = find_slot(false);
    CK_SESSION_HANDLE s;
    must(fl->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, nullptr, nullptr, &s), "C_OpenSession");
    must(fl->C_Login(s, CKU_SO, pin(so_pin), std::strlen(so_pin)), "C_Login(SO)");
    must(fl->C_InitPIN(s, pin(user_pin), std::strlen(user_pin)), "C_InitPIN");
    must(fl->C_Logout(s), "C_Logout");
    must(fl->C_Login(s, CKU_USER, pin(user_pin), std::strlen(user_pin)), "C_Login");
    CK_MECHANISM gen{CKM_RSA_PKCS_KEY_PAIR_GEN, nullptr, 0};
    CK_ULONG bits = 2048;
    CK_BYTE exponent[] = {1, 0, 1};
    CK_BBOOL yes = CK_TRUE;
    CK_ATTRIBUTE pub[] = {{CKA_TOKEN, &yes, sizeof yes},       {CKA_VERIFY, &yes, sizeof yes},
                          {CKA_MODULUS_BITS, &bits, sizeof bits}, {CKA_PUBLIC_EXPONENT, exponent, sizeof exponent},
                          {CKA_ID, key_id, sizeof key_id}};
    CK_ATTRIBUTE priv[] = {{CKA_TOKEN, &yes, sizeof yes},
                           {CKA_PRIVATE, &yes, sizeof yes},
                           {CKA_SIGN, &yes, sizeof yes},
                           {CKA_ID, key_id, sizeof key_id}};
    CK_OBJECT_HANDLE hp, hk;
    must(fl->C_GenerateKeyPair(s, &gen, pub, 5, priv, 4, &hp, &hk), "C_GenerateKeyPair");
    must(fl->C_Finalize(nullptr), "C_Finalize");
}

CK_OBJECT_HANDLE find(CK_SESSION_HANDLE s, CK_OBJECT_CLASS cls)
{
    CK_ATTRIBUTE t[] = {{CKA_CLASS, &cls, sizeof cls}, {CKA_ID, key_id, sizeof key_id}};
    must(fl->C_FindObjectsInit(s, t, 2), "C_FindObjectsInit");
    CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
    CK_ULONG n = 0;
    must(fl->C_FindObjects(s, &h, 1, &n), "C_FindObjects");
    must(fl->C_FindObjectsFinal(s), "C_FindObjectsFinal");
    if (n != 1)
        must(CKR_OBJECT_HANDLE_INVALID, "finding the key");
    return h;
}

void run(const std::string& fn, long n)
{
    CK_SLOT_ID slot = find_slot(false);
    CK_SESSION_HANDLE s;
    must(fl->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, nullptr, nullptr, &s), "C_OpenSession");
    must(fl->C_Login(s, CKU_USER, pin(user_pin), std::strlen(user_pin)), "C_Login");
    const CK_OBJECT_HANDLE pub = find(s, CKO_PUBLIC_KEY), priv = find(s, CKO_PRIVATE_KEY);
    CK_BYTE data[64] = {1, 2, 3};
    CK_BYTE out[512];
    for (long i = 0; i < n; ++i) {
        CK_ULONG len = sizeof out;
        if (fn == "GetSessionInfo") {
            CK_SESSION_INFO si;
            must(fl->C_GetSessionInfo(s, &si), "C_GetSessionInfo");
        } else if (fn == "GetAttributeValue") {
            CK_ULONG bits = 0;
            CK_ATTRIBUTE a{CKA_MODULUS_BITS, &bits, sizeof bits};
            must(fl->C_GetAttributeValue(s, pub, &a, 1), "C_GetAttributeValue");
        } else if (fn == "Digest") {
            CK_MECHANISM m{CKM_SHA256, nullptr, 0};
            must(fl->C_DigestInit(s, &m), "C_DigestInit");
            must(fl->C_Digest(s, data, sizeof data, out, &len), "C_Digest");
        } else if (fn == "Sign") {
            CK_MECHANISM m{CKM_SHA256_RSA_PKCS, nullptr, 0};
            must(fl->C_SignInit(s, &m, priv), "C_SignInit");
            must(fl->C_Sign(s, data, 32, out, &len), "C_Sign");
        } else if (fn == "Login") {
            must(fl->C_Logout(s), "C_Logout");
            must(fl->C_Login(s, CKU_USER, pin(user_pin), std::strlen(user_pin)), "C_Login");
        } else {
            std::fprintf(stderr, "ukey-calls: unknown function %s\n", fn.c_str());
            std::exit(2);
        }
    }
    must(fl->C_Finalize(nullptr), "C_Finalize");
}

} // namespace

int main(int argc, char** argv)
{
    if (argc == 3 && std::strcmp(argv[1], "setup") == 0) {
        load(argv[2]);
        setup();
        return 0;
    }
    if (argc == 5 && std::strcmp(argv[1], "run") == 0) {
        load(argv[2]);
        run(argv[3], std::atol(argv[4]));
        return 0;
    }
    std::fprintf(stderr, "usage: ukey-calls setup MODULE | run MODULE FUNCTION N\n");
    return 2;
}
