// ukey-test-fakecard: a TEST-ONLY PKCS#11 module that behaves like a smart
// card which counts its own wrong PIN tries (see README.md and fakecard.h).
//
// One slot (FAKECARD_SLOT_ID), one initialised token with a user PIN and an
// SO PIN. Each PIN has FAKECARD_MAX_TRIES tries; the counters and the PINs
// live in the file named by $FAKECARD_STATE, read and rewritten under
// flock() on every PIN operation, so several processes share one card. The
// token flags CKF_*_PIN_COUNT_LOW / _FINAL_TRY / _LOCKED are the card's own.
//
// Implemented: C_Initialize, C_Finalize, C_GetInfo, C_GetFunctionList,
// C_GetSlotList, C_GetSlotInfo, C_GetTokenInfo, C_GetMechanismList (empty),
// C_GetMechanismInfo (CKR_MECHANISM_INVALID), C_InitPIN, C_SetPIN,
// C_OpenSession, C_CloseSession, C_CloseAllSessions, C_GetSessionInfo,
// C_Login, C_Logout, C_WaitForSlotEvent (CKF_DONT_BLOCK: CKR_NO_EVENT;
// blocking: a line from $FAKECARD_EVENTS, see fakecard.h).
// Every other entry returns CKR_FUNCTION_NOT_SUPPORTED.
#include "fakecard.h"

#include <ukey/pkcs11.h>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <string>

#define FAKECARD_EXPORT extern "C" __attribute__((visibility("default")))

namespace {

enum class Who { nobody, user, so };

struct CardState {
    unsigned user_left = FAKECARD_MAX_TRIES;
    unsigned so_left = FAKECARD_MAX_TRIES;
    std::string user_pin = FAKECARD_DEFAULT_USER_PIN;
    std::string so_pin = FAKECARD_DEFAULT_SO_PIN;
    CK_RV fault = CKR_OK; // what C_GetTokenInfo answers instead (fault=)
};

// The faults a state file may give the card (FAKECARD_FAULTS in fakecard.h).
struct Fault {
    const char* name;
    CK_RV rv;
};
constexpr Fault faults[] = {{"device_error", CKR_DEVICE_ERROR},
                            {"device_memory", CKR_DEVICE_MEMORY},
                            {"device_removed", CKR_DEVICE_REMOVED},
                            {"token_not_recognized", CKR_TOKEN_NOT_RECOGNIZED}};

std::mutex g_mu; // guards everything below and serialises state file access
bool g_initialized = false;
std::string g_state_path;
std::map<CK_SESSION_HANDLE, CK_FLAGS> g_sessions;
CK_SESSION_HANDLE g_next_session = 1;
Who g_login = Who::nobody;

void pad(CK_UTF8CHAR* field, std::size_t size, const char* text)
{
    std::memset(field, ' ', size);
    std::memcpy(field, text, std::min(size, std::strlen(text)));
}

// The environment's value for a text field, else the constant.
const char* text_of(const char* env, const char* constant)
{
    const char* v = std::getenv(env);
    return v ? v : constant;
}

bool parse_state(const std::string& text, CardState& s)
{
    unsigned ul = 0, sl = 0;
    char upin[64] = {0}, spin[64] = {0};
    if (std::sscanf(text.c_str(), "fakecard 1 user_left=%u so_left=%u user_pin=%63s so_pin=%63s", &ul, &sl, upin,
                    spin) != 4)
        return false;
    if (ul > FAKECARD_MAX_TRIES || sl > FAKECARD_MAX_TRIES)
        return false;
    s.user_left = ul;
    s.so_left = sl;
    s.user_pin = upin;
    s.so_pin = spin;
    s.fault = CKR_OK;
    if (const auto at = text.find(" fault="); at != std::string::npos) {
        const std::string name = text.substr(at + 7, text.find_first_of(" \n", at + 7) - (at + 7));
        const auto* f = std::find_if(std::begin(faults), std::end(faults), [&](const Fault& x) { return name == x.name; });
        if (f == std::end(faults))
            return false;
        s.fault = f->rv;
    }
    return true;
}

std::string format_state(const CardState& s)
{
    std::string fault;
    for (const auto& f : faults)
        if (f.rv == s.fault)
            fault = std::string(" fault=") + f.name;
    return "fakecard 1 user_left=" + std::to_string(s.user_left) + " so_left=" + std::to_string(s.so_left) +
           " user_pin=" + s.user_pin + " so_pin=" + s.so_pin + fault + "\n";
}

// Runs fn(state, changed) on the card state under flock; writes it back when
// fn set `changed`. Caller holds g_mu.
template <class Fn>
CK_RV with_state(Fn&& fn)
{
    int fd = open(g_state_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        std::fprintf(stderr, "fakecard: cannot open %s: %s\n", g_state_path.c_str(), std::strerror(errno));
        return CKR_DEVICE_ERROR;
    }
    CK_RV rv = CKR_OK;
    if (flock(fd, LOCK_EX) != 0) {
        rv = CKR_DEVICE_ERROR;
    } else {
        std::string text;
        char buf[512];
        ssize_t n;
        while ((n = read(fd, buf, sizeof buf)) > 0)
            text.append(buf, static_cast<std::size_t>(n));
        CardState s;
        if (n < 0 || (!text.empty() && !parse_state(text, s))) {
            std::fprintf(stderr, "fakecard: state file %s is unreadable\n", g_state_path.c_str());
            rv = CKR_DEVICE_ERROR;
        } else {
            bool changed = text.empty();
            rv = fn(s, changed);
            if (changed) {
                const std::string out = format_state(s);
                if (ftruncate(fd, 0) != 0 ||
                    pwrite(fd, out.data(), out.size(), 0) != static_cast<ssize_t>(out.size()))
                    rv = CKR_DEVICE_ERROR;
            }
        }
    }
    close(fd);
    return rv;
}

bool pin_equals(const std::string& pin, CK_UTF8CHAR_PTR p, CK_ULONG len)
{
    return p && len == pin.size() && std::memcmp(p, pin.data(), len) == 0;
}

// A PIN the card can store: its length limits, no blanks or controls.
CK_RV storable_pin(CK_UTF8CHAR_PTR p, CK_ULONG len)
{
    if (!p)
        return CKR_ARGUMENTS_BAD;
    if (len < FAKECARD_MIN_PIN || len > FAKECARD_MAX_PIN)
        return CKR_PIN_LEN_RANGE;
    for (CK_ULONG i = 0; i < len; ++i)
        if (p[i] <= ' ' || p[i] >= 0x7f)
            return CKR_PIN_INVALID;
    return CKR_OK;
}

// Checks `pin` against one of the card's PINs, counting a wrong one.
CK_RV verify_pin(Who who, CK_UTF8CHAR_PTR pin, CK_ULONG len)
{
    return with_state([&](CardState& s, bool& changed) -> CK_RV {
        unsigned& left = who == Who::so ? s.so_left : s.user_left;
        const std::string& right = who == Who::so ? s.so_pin : s.user_pin;
        if (left == 0)
            return CKR_PIN_LOCKED;
        if (!pin_equals(right, pin, len)) {
            --left;
            changed = true;
            return CKR_PIN_INCORRECT;
        }
        if (left != FAKECARD_MAX_TRIES) {
            left = FAKECARD_MAX_TRIES;
            changed = true;
        }
        return CKR_OK;
    });
}

template <class... A>
CK_RV unsupported(A...)
{
    return CKR_FUNCTION_NOT_SUPPORTED;
}

#define FC_CHECK_INIT()                                                                                          \
    std::lock_guard<std::mutex> guard(g_mu);                                                                     \
    if (!g_initialized)                                                                                          \
    return CKR_CRYPTOKI_NOT_INITIALIZED

// A slot function's checks, in the spec's order: initialised, its output
// pointer, the slot.
#define FC_CHECK_SLOT_CALL(slot, out)                                                                            \
    FC_CHECK_INIT();                                                                                             \
    if (!(out))                                                                                                  \
        return CKR_ARGUMENTS_BAD;                                                                                \
    if ((slot) != FAKECARD_SLOT_ID)                                                                              \
    return CKR_SLOT_ID_INVALID

#define FC_SESSION(h)                                                                                            \
    auto session_it = g_sessions.find(h);                                                                        \
    if (session_it == g_sessions.end())                                                                          \
        return CKR_SESSION_HANDLE_INVALID;                                                                       \
    const CK_FLAGS session_flags = session_it->second;                                                           \
    (void)session_flags

CK_RV fc_Initialize(CK_VOID_PTR pInitArgs)
{
    std::lock_guard<std::mutex> guard(g_mu);
    if (g_initialized)
        return CKR_CRYPTOKI_ALREADY_INITIALIZED;
    if (pInitArgs) {
        auto* a = static_cast<CK_C_INITIALIZE_ARGS*>(pInitArgs);
        if (a->pReserved)
            return CKR_ARGUMENTS_BAD;
        const bool any = a->CreateMutex || a->DestroyMutex || a->LockMutex || a->UnlockMutex;
        const bool all = a->CreateMutex && a->DestroyMutex && a->LockMutex && a->UnlockMutex;
        if (any && !all)
            return CKR_ARGUMENTS_BAD;
        if (all && !(a->flags & CKF_OS_LOCKING_OK))
            return CKR_CANT_LOCK; // we only know OS locking
    }
    const char* path = std::getenv(FAKECARD_STATE_ENV);
    if (!path || !*path) {
        std::fprintf(stderr, "fakecard: set %s to the card's state file\n", FAKECARD_STATE_ENV);
        return CKR_GENERAL_ERROR;
    }
    g_state_path = path;
    g_sessions.clear();
    g_login = Who::nobody;
    g_initialized = true;
    return CKR_OK;
}

CK_RV fc_Finalize(CK_VOID_PTR pReserved)
{
    if (pReserved)
        return CKR_ARGUMENTS_BAD;
    FC_CHECK_INIT();
    g_sessions.clear();
    g_login = Who::nobody;
    g_initialized = false;
    return CKR_OK;
}

CK_RV fc_GetInfo(CK_INFO_PTR pInfo)
{
    FC_CHECK_INIT();
    if (!pInfo)
        return CKR_ARGUMENTS_BAD;
    std::memset(pInfo, 0, sizeof *pInfo);
    pInfo->cryptokiVersion = {2, 40};
    pad(pInfo->manufacturerID, sizeof pInfo->manufacturerID, FAKECARD_MANUFACTURER);
    pad(pInfo->libraryDescription, sizeof pInfo->libraryDescription, "ukey test fake card");
    pInfo->libraryVersion = {1, 0};
    return CKR_OK;
}

CK_RV fc_GetSlotList(CK_BBOOL, CK_SLOT_ID_PTR pSlotList, CK_ULONG_PTR pulCount)
{
    FC_CHECK_INIT();
    if (!pulCount)
        return CKR_ARGUMENTS_BAD;
    if (!pSlotList) {
        *pulCount = 1;
        return CKR_OK;
    }
    if (*pulCount < 1) {
        *pulCount = 1;
        return CKR_BUFFER_TOO_SMALL;
    }
    pSlotList[0] = FAKECARD_SLOT_ID;
    *pulCount = 1;
    return CKR_OK;
}

CK_RV fc_GetSlotInfo(CK_SLOT_ID slotID, CK_SLOT_INFO_PTR pInfo)
{
    FC_CHECK_SLOT_CALL(slotID, pInfo);
    std::memset(pInfo, 0, sizeof *pInfo);
    pad(pInfo->slotDescription, sizeof pInfo->slotDescription, text_of(FAKECARD_READER_ENV, "fakecard reader"));
    pad(pInfo->manufacturerID, sizeof pInfo->manufacturerID, FAKECARD_MANUFACTURER);
    pInfo->flags = CKF_TOKEN_PRESENT | CKF_HW_SLOT | CKF_REMOVABLE_DEVICE;
    pInfo->hardwareVersion = {1, 0};
    pInfo->firmwareVersion = {1, 0};
    return CKR_OK;
}

CK_FLAGS pin_flags(unsigned left, CK_FLAGS low, CK_FLAGS final_try, CK_FLAGS locked)
{
    CK_FLAGS f = 0;
    if (left < FAKECARD_MAX_TRIES)
        f |= low;
    if (left == 1)
        f |= final_try;
    if (left == 0)
        f |= locked;
    return f;
}

CK_RV fc_GetTokenInfo(CK_SLOT_ID slotID, CK_TOKEN_INFO_PTR pInfo)
{
    FC_CHECK_SLOT_CALL(slotID, pInfo);
    CardState now;
    CK_RV rv = with_state([&](CardState& s, bool&) -> CK_RV {
        now = s;
        return CKR_OK;
    });
    if (rv == CKR_OK)
        rv = now.fault;
    if (rv != CKR_OK)
        return rv;
    std::memset(pInfo, 0, sizeof *pInfo);
    pad(pInfo->label, sizeof pInfo->label, text_of(FAKECARD_TOKEN_LABEL_ENV, FAKECARD_LABEL));
    pad(pInfo->manufacturerID, sizeof pInfo->manufacturerID,
        text_of(FAKECARD_TOKEN_MANUFACTURER_ENV, FAKECARD_MANUFACTURER));
    pad(pInfo->model, sizeof pInfo->model, text_of(FAKECARD_TOKEN_MODEL_ENV, FAKECARD_MODEL));
    pad(pInfo->serialNumber, sizeof pInfo->serialNumber, text_of(FAKECARD_TOKEN_SERIAL_ENV, FAKECARD_SERIAL));
    static unsigned long calls = 0;
    ++calls;
    if (const char* every = std::getenv(FAKECARD_SERIAL_GLITCH_ENV)) {
        const unsigned long n = std::strtoul(every, nullptr, 10);
        if (n > 0 && calls % n == 0)
            pad(pInfo->serialNumber, sizeof pInfo->serialNumber, "");
    }
    pInfo->flags = CKF_TOKEN_INITIALIZED | CKF_LOGIN_REQUIRED | CKF_USER_PIN_INITIALIZED |
                   pin_flags(now.user_left, CKF_USER_PIN_COUNT_LOW, CKF_USER_PIN_FINAL_TRY, CKF_USER_PIN_LOCKED) |
                   pin_flags(now.so_left, CKF_SO_PIN_COUNT_LOW, CKF_SO_PIN_FINAL_TRY, CKF_SO_PIN_LOCKED);
    pInfo->ulMaxSessionCount = CK_EFFECTIVELY_INFINITE;
    pInfo->ulSessionCount = g_sessions.size();
    pInfo->ulMaxRwSessionCount = CK_EFFECTIVELY_INFINITE;
    CK_ULONG rw = 0;
    for (const auto& [h, f] : g_sessions)
        rw += (f & CKF_RW_SESSION) ? 1 : 0;
    pInfo->ulRwSessionCount = rw;
    pInfo->ulMaxPinLen = FAKECARD_MAX_PIN;
    pInfo->ulMinPinLen = FAKECARD_MIN_PIN;
    pInfo->ulTotalPublicMemory = CK_UNAVAILABLE_INFORMATION;
    pInfo->ulFreePublicMemory = CK_UNAVAILABLE_INFORMATION;
    pInfo->ulTotalPrivateMemory = CK_UNAVAILABLE_INFORMATION;
    pInfo->ulFreePrivateMemory = CK_UNAVAILABLE_INFORMATION;
    pInfo->hardwareVersion = {1, 0};
    pInfo->firmwareVersion = {1, 0};
    std::memset(pInfo->utcTime, ' ', sizeof pInfo->utcTime);
    return CKR_OK;
}

CK_RV fc_GetMechanismList(CK_SLOT_ID slotID, CK_MECHANISM_TYPE_PTR, CK_ULONG_PTR pulCount)
{
    FC_CHECK_SLOT_CALL(slotID, pulCount);
    *pulCount = 0;
    return CKR_OK;
}

CK_RV fc_GetMechanismInfo(CK_SLOT_ID slotID, CK_MECHANISM_TYPE, CK_MECHANISM_INFO_PTR pInfo)
{
    FC_CHECK_SLOT_CALL(slotID, pInfo);
    return CKR_MECHANISM_INVALID;
}

CK_RV fc_OpenSession(CK_SLOT_ID slotID, CK_FLAGS flags, CK_VOID_PTR, CK_NOTIFY, CK_SESSION_HANDLE_PTR phSession)
{
    FC_CHECK_SLOT_CALL(slotID, phSession);
    if (!(flags & CKF_SERIAL_SESSION))
        return CKR_SESSION_PARALLEL_NOT_SUPPORTED;
    if (g_login == Who::so && !(flags & CKF_RW_SESSION))
        return CKR_SESSION_READ_WRITE_SO_EXISTS;
    *phSession = g_next_session++;
    g_sessions[*phSession] = flags & (CKF_SERIAL_SESSION | CKF_RW_SESSION);
    return CKR_OK;
}

CK_RV fc_CloseSession(CK_SESSION_HANDLE hSession)
{
    FC_CHECK_INIT();
    FC_SESSION(hSession);
    g_sessions.erase(session_it);
    if (g_sessions.empty())
        g_login = Who::nobody; // closing the last session logs out
    return CKR_OK;
}

CK_RV fc_CloseAllSessions(CK_SLOT_ID slotID)
{
    FC_CHECK_INIT();
    if (slotID != FAKECARD_SLOT_ID)
        return CKR_SLOT_ID_INVALID;
    g_sessions.clear();
    g_login = Who::nobody;
    return CKR_OK;
}

CK_RV fc_GetSessionInfo(CK_SESSION_HANDLE hSession, CK_SESSION_INFO_PTR pInfo)
{
    FC_CHECK_INIT();
    if (!pInfo)
        return CKR_ARGUMENTS_BAD;
    FC_SESSION(hSession);
    pInfo->slotID = FAKECARD_SLOT_ID;
    pInfo->flags = session_flags;
    pInfo->ulDeviceError = 0;
    const bool rw = session_flags & CKF_RW_SESSION;
    switch (g_login) {
    case Who::nobody: pInfo->state = rw ? CKS_RW_PUBLIC_SESSION : CKS_RO_PUBLIC_SESSION; break;
    case Who::user: pInfo->state = rw ? CKS_RW_USER_FUNCTIONS : CKS_RO_USER_FUNCTIONS; break;
    case Who::so: pInfo->state = CKS_RW_SO_FUNCTIONS; break;
    }
    return CKR_OK;
}

CK_RV fc_Login(CK_SESSION_HANDLE hSession, CK_USER_TYPE userType, CK_UTF8CHAR_PTR pPin, CK_ULONG ulPinLen)
{
    FC_CHECK_INIT();
    FC_SESSION(hSession);
    if (!pPin && ulPinLen)
        return CKR_ARGUMENTS_BAD;
    if (userType == CKU_CONTEXT_SPECIFIC)
        return CKR_OPERATION_NOT_INITIALIZED; // no operation needs it on this card
    if (userType != CKU_USER && userType != CKU_SO)
        return CKR_USER_TYPE_INVALID;
    const Who who = userType == CKU_SO ? Who::so : Who::user;
    if (g_login == who)
        return CKR_USER_ALREADY_LOGGED_IN;
    if (g_login != Who::nobody)
        return CKR_USER_ANOTHER_ALREADY_LOGGED_IN;
    if (who == Who::so)
        for (const auto& [h, f] : g_sessions)
            if (!(f & CKF_RW_SESSION))
                return CKR_SESSION_READ_ONLY_EXISTS;
    CK_RV rv = verify_pin(who, pPin, ulPinLen);
    if (rv == CKR_OK)
        g_login = who;
    return rv;
}

CK_RV fc_Logout(CK_SESSION_HANDLE hSession)
{
    FC_CHECK_INIT();
    FC_SESSION(hSession);
    if (g_login == Who::nobody)
        return CKR_USER_NOT_LOGGED_IN;
    g_login = Who::nobody;
    return CKR_OK;
}

CK_RV fc_InitPIN(CK_SESSION_HANDLE hSession, CK_UTF8CHAR_PTR pPin, CK_ULONG ulPinLen)
{
    FC_CHECK_INIT();
    FC_SESSION(hSession);
    if (!(session_flags & CKF_RW_SESSION))
        return CKR_SESSION_READ_ONLY;
    if (g_login != Who::so)
        return CKR_USER_NOT_LOGGED_IN;
    if (CK_RV rv = storable_pin(pPin, ulPinLen); rv != CKR_OK)
        return rv;
    return with_state([&](CardState& s, bool& changed) -> CK_RV {
        s.user_pin.assign(reinterpret_cast<const char*>(pPin), ulPinLen);
        s.user_left = FAKECARD_MAX_TRIES;
        changed = true;
        return CKR_OK;
    });
}

CK_RV fc_SetPIN(CK_SESSION_HANDLE hSession, CK_UTF8CHAR_PTR pOldPin, CK_ULONG ulOldLen, CK_UTF8CHAR_PTR pNewPin,
                CK_ULONG ulNewLen)
{
    FC_CHECK_INIT();
    FC_SESSION(hSession);
    if ((!pOldPin && ulOldLen) || (!pNewPin && ulNewLen))
        return CKR_ARGUMENTS_BAD;
    if (!(session_flags & CKF_RW_SESSION))
        return CKR_SESSION_READ_ONLY;
    if (CK_RV rv = storable_pin(pNewPin, ulNewLen); rv != CKR_OK)
        return rv;
    const Who who = g_login == Who::so ? Who::so : Who::user;
    CK_RV rv = verify_pin(who, pOldPin, ulOldLen);
    if (rv != CKR_OK)
        return rv;
    return with_state([&](CardState& s, bool& changed) -> CK_RV {
        (who == Who::so ? s.so_pin : s.user_pin).assign(reinterpret_cast<const char*>(pNewPin), ulNewLen);
        changed = true;
        return CKR_OK;
    });
}

CK_RV fc_WaitForSlotEvent(CK_FLAGS flags, CK_SLOT_ID_PTR pSlot, CK_VOID_PTR pReserved)
{
    FC_CHECK_INIT();
    if (!pSlot || pReserved)
        return CKR_ARGUMENTS_BAD;
    if (flags & CKF_DONT_BLOCK)
        return CKR_NO_EVENT;
    const char* fifo = std::getenv(FAKECARD_EVENTS_ENV);
    if (!fifo || !*fifo)
        return CKR_FUNCTION_NOT_SUPPORTED;
    // Opening blocks until a writer comes; each writer's line is one event.
    int fd = open(fifo, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return CKR_DEVICE_ERROR;
    char c;
    ssize_t n;
    while ((n = read(fd, &c, 1)) == 1 && c != '\n') {
    }
    close(fd);
    if (n < 0)
        return CKR_DEVICE_ERROR;
    *pSlot = FAKECARD_SLOT_ID;
    return CKR_OK;
}

CK_RV fc_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR ppFunctionList);

CK_FUNCTION_LIST make_list()
{
    CK_FUNCTION_LIST f{};
    f.version = {2, 40};
#define FC_UNSUPPORTED(name) f.name = unsupported;
    FC_UNSUPPORTED(C_InitToken)
    FC_UNSUPPORTED(C_GetOperationState)
    FC_UNSUPPORTED(C_SetOperationState)
    FC_UNSUPPORTED(C_CreateObject)
    FC_UNSUPPORTED(C_CopyObject)
    FC_UNSUPPORTED(C_DestroyObject)
    FC_UNSUPPORTED(C_GetObjectSize)
    FC_UNSUPPORTED(C_GetAttributeValue)
    FC_UNSUPPORTED(C_SetAttributeValue)
    FC_UNSUPPORTED(C_FindObjectsInit)
    FC_UNSUPPORTED(C_FindObjects)
    FC_UNSUPPORTED(C_FindObjectsFinal)
    FC_UNSUPPORTED(C_EncryptInit)
    FC_UNSUPPORTED(C_Encrypt)
    FC_UNSUPPORTED(C_EncryptUpdate)
    FC_UNSUPPORTED(C_EncryptFinal)
    FC_UNSUPPORTED(C_DecryptInit)
    FC_UNSUPPORTED(C_Decrypt)
    FC_UNSUPPORTED(C_DecryptUpdate)
    FC_UNSUPPORTED(C_DecryptFinal)
    FC_UNSUPPORTED(C_DigestInit)
    FC_UNSUPPORTED(C_Digest)
    FC_UNSUPPORTED(C_DigestUpdate)
    FC_UNSUPPORTED(C_DigestKey)
    FC_UNSUPPORTED(C_DigestFinal)
    FC_UNSUPPORTED(C_SignInit)
    FC_UNSUPPORTED(C_Sign)
    FC_UNSUPPORTED(C_SignUpdate)
    FC_UNSUPPORTED(C_SignFinal)
    FC_UNSUPPORTED(C_SignRecoverInit)
    FC_UNSUPPORTED(C_SignRecover)
    FC_UNSUPPORTED(C_VerifyInit)
    FC_UNSUPPORTED(C_Verify)
    FC_UNSUPPORTED(C_VerifyUpdate)
    FC_UNSUPPORTED(C_VerifyFinal)
    FC_UNSUPPORTED(C_VerifyRecoverInit)
    FC_UNSUPPORTED(C_VerifyRecover)
    FC_UNSUPPORTED(C_DigestEncryptUpdate)
    FC_UNSUPPORTED(C_DecryptDigestUpdate)
    FC_UNSUPPORTED(C_SignEncryptUpdate)
    FC_UNSUPPORTED(C_DecryptVerifyUpdate)
    FC_UNSUPPORTED(C_GenerateKey)
    FC_UNSUPPORTED(C_GenerateKeyPair)
    FC_UNSUPPORTED(C_WrapKey)
    FC_UNSUPPORTED(C_UnwrapKey)
    FC_UNSUPPORTED(C_DeriveKey)
    FC_UNSUPPORTED(C_SeedRandom)
    FC_UNSUPPORTED(C_GenerateRandom)
    FC_UNSUPPORTED(C_GetFunctionStatus)
    FC_UNSUPPORTED(C_CancelFunction)
#undef FC_UNSUPPORTED
    f.C_Initialize = fc_Initialize;
    f.C_Finalize = fc_Finalize;
    f.C_GetInfo = fc_GetInfo;
    f.C_GetFunctionList = fc_GetFunctionList;
    f.C_GetSlotList = fc_GetSlotList;
    f.C_GetSlotInfo = fc_GetSlotInfo;
    f.C_GetTokenInfo = fc_GetTokenInfo;
    f.C_GetMechanismList = fc_GetMechanismList;
    f.C_GetMechanismInfo = fc_GetMechanismInfo;
    f.C_InitPIN = fc_InitPIN;
    f.C_SetPIN = fc_SetPIN;
    f.C_OpenSession = fc_OpenSession;
    f.C_CloseSession = fc_CloseSession;
    f.C_CloseAllSessions = fc_CloseAllSessions;
    f.C_GetSessionInfo = fc_GetSessionInfo;
    f.C_Login = fc_Login;
    f.C_Logout = fc_Logout;
    f.C_WaitForSlotEvent = fc_WaitForSlotEvent;
    return f;
}

CK_FUNCTION_LIST g_list = make_list();

CK_RV fc_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR ppFunctionList)
{
    if (!ppFunctionList)
        return CKR_ARGUMENTS_BAD;
    *ppFunctionList = &g_list;
    return CKR_OK;
}

} // namespace

FAKECARD_EXPORT CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR ppFunctionList)
{
    return fc_GetFunctionList(ppFunctionList);
}
