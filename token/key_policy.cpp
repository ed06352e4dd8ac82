#include "token/key_policy.h"
#include "token/docs.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <vector>

namespace ukey {

namespace {

constexpr std::size_t max_record = 128; // the record is ~50 bytes

CK_UTF8CHAR_PTR app_bytes()
{
    return reinterpret_cast<CK_UTF8CHAR_PTR>(const_cast<char*>(key_policy_application));
}
CK_ULONG app_len()
{
    return static_cast<CK_ULONG>(std::strlen(key_policy_application));
}

bool is_app(const CK_ATTRIBUTE& a)
{
    return a.pValue && a.ulValueLen == app_len() && std::memcmp(a.pValue, key_policy_application, app_len()) == 0;
}

// A session of ukey's own on the backend slot, so that no operation of the
// application's sessions (an active search) is disturbed.
class OwnSession {
public:
    OwnSession(const Backend& b, CK_SLOT_ID slot, bool rw) : b_(b)
    {
        const CK_FLAGS flags = CKF_SERIAL_SESSION | (rw ? CKF_RW_SESSION : 0);
        rv_ = b_.call(&CK_FUNCTION_LIST::C_OpenSession, slot, flags, CK_VOID_PTR(nullptr), CK_NOTIFY(nullptr), &h_);
        // With an SO logged in, only R/W sessions may be opened.
        if (rv_ == CKR_SESSION_READ_WRITE_SO_EXISTS)
            rv_ = b_.call(&CK_FUNCTION_LIST::C_OpenSession, slot, flags | CKF_RW_SESSION, CK_VOID_PTR(nullptr),
                          CK_NOTIFY(nullptr), &h_);
    }
    ~OwnSession()
    {
        if (rv_ == CKR_OK)
            b_.call(&CK_FUNCTION_LIST::C_CloseSession, h_);
    }
    OwnSession(const OwnSession&) = delete;
    OwnSession& operator=(const OwnSession&) = delete;
    CK_RV rv() const { return rv_; }
    CK_SESSION_HANDLE handle() const { return h_; }

private:
    const Backend& b_;
    CK_SESSION_HANDLE h_ = CK_INVALID_HANDLE;
    CK_RV rv_;
};

// The policy objects on the token (normally 0 or 1; up to 4 are reported).
CK_RV find_policies(const Backend& b, CK_SESSION_HANDLE s, std::vector<CK_OBJECT_HANDLE>& out)
{
    CK_OBJECT_CLASS cls = CKO_DATA;
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    CK_ATTRIBUTE t[] = {{CKA_CLASS, &cls, sizeof cls},
                        {CKA_TOKEN, &yes, sizeof yes},
                        {CKA_PRIVATE, &no, sizeof no},
                        {CKA_APPLICATION, app_bytes(), app_len()}};
    CK_RV rv = b.call(&CK_FUNCTION_LIST::C_FindObjectsInit, s, t, CK_ULONG(4));
    if (rv != CKR_OK)
        return rv;
    CK_OBJECT_HANDLE hs[4];
    CK_ULONG n = 0;
    rv = b.call(&CK_FUNCTION_LIST::C_FindObjects, s, hs, CK_ULONG(4), &n);
    b.call(&CK_FUNCTION_LIST::C_FindObjectsFinal, s);
    if (rv != CKR_OK)
        return rv;
    out.assign(hs, hs + std::min<CK_ULONG>(n, 4));
    return CKR_OK;
}

Error untrusted(const std::string& why)
{
    return Error{CKR_PIN_LOCKED, why};
}

} // namespace

std::string key_name(const KeyId& key)
{
    return "(" + key.backend + ", serial " + key.serial + ")";
}

std::string format_key_policy(const KeyPolicy& p)
{
    char buf[max_record];
    std::snprintf(buf, sizeof buf, "ukey-policy 1 user_max=%u so_max=%u must_change=%d", p.user_max, p.so_max,
                  p.user_must_change ? 1 : 0);
    return buf;
}

std::optional<KeyPolicy> parse_key_policy(const std::string& text)
{
    KeyPolicy p;
    int change = -1, used = 0;
    if (text.size() >= max_record || text.find('\0') != std::string::npos)
        return std::nullopt;
    if (std::sscanf(text.c_str(), "ukey-policy 1 user_max=%u so_max=%u must_change=%d%n", &p.user_max, &p.so_max,
                    &change, &used) != 3 ||
        static_cast<std::size_t>(used) != text.size())
        return std::nullopt;
    if (p.user_max < min_tries || p.user_max > max_tries || p.so_max < min_tries || p.so_max > max_tries ||
        (change != 0 && change != 1))
        return std::nullopt;
    p.user_must_change = change == 1;
    // Exactly what format_key_policy writes, nothing else.
    if (format_key_policy(p) != text)
        return std::nullopt;
    return p;
}

Result<std::optional<KeyPolicy>> read_key_policy(const Backend& b, CK_SLOT_ID backend_slot)
{
    OwnSession s(b, backend_slot, false);
    if (s.rv() != CKR_OK)
        return Error{s.rv(), "cannot open a session to read the Key's PIN policy"};
    std::vector<CK_OBJECT_HANDLE> found;
    CK_RV rv = find_policies(b, s.handle(), found);
    if (rv == CKR_FUNCTION_NOT_SUPPORTED)
        return std::optional<KeyPolicy>(); // a token without objects carries no policy
    if (rv != CKR_OK)
        return Error{rv, "cannot look for the Key's PIN policy object"};
    if (found.empty())
        return std::optional<KeyPolicy>();
    if (found.size() > 1)
        return untrusted("the Key carries " + std::string(found.size() > 3 ? "several" : std::to_string(found.size())) +
                         " ukey PIN policy objects, where ukey writes one: something wrote them around ukey");
    char value[max_record];
    CK_ATTRIBUTE a{CKA_LABEL, value, sizeof value};
    rv = b.call(&CK_FUNCTION_LIST::C_GetAttributeValue, s.handle(), found[0], &a, CK_ULONG(1));
    if (rv == CKR_BUFFER_TOO_SMALL || (rv == CKR_OK && a.ulValueLen > sizeof value))
        return untrusted("the Key's ukey PIN policy object is too large to be ukey's");
    if (rv != CKR_OK)
        return Error{rv, "cannot read the Key's PIN policy object"};
    auto p = parse_key_policy(std::string(value, a.ulValueLen));
    if (!p)
        return untrusted("the Key's ukey PIN policy object does not hold a policy ukey wrote");
    return std::optional<KeyPolicy>(*p);
}

CK_RV write_key_policy(const Backend& b, CK_SLOT_ID backend_slot, const KeyPolicy& p)
{
    OwnSession s(b, backend_slot, true);
    if (s.rv() != CKR_OK)
        return s.rv();
    std::vector<CK_OBJECT_HANDLE> found;
    if (CK_RV rv = find_policies(b, s.handle(), found); rv != CKR_OK)
        return rv;
    if (found.size() > 1)
        return CKR_PIN_LOCKED; // see read_key_policy: only a re-initialisation clears that up
    std::string text = format_key_policy(p);
    if (found.size() == 1) {
        CK_ATTRIBUTE a{CKA_LABEL, text.data(), static_cast<CK_ULONG>(text.size())};
        return b.call(&CK_FUNCTION_LIST::C_SetAttributeValue, s.handle(), found[0], &a, CK_ULONG(1));
    }
    CK_OBJECT_CLASS cls = CKO_DATA;
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    char about[] = "ukey's PIN policy for this Key: try limits, transport-PIN mark (" UKEY_DOC("pin-policy.md") ")";
    // Not destroyable: code that goes around ukey cannot simply delete it
    // (C_InitToken still wipes it); backends that do not know
    // CKA_DESTROYABLE (a v2.40 attribute) get the object without it.
    CK_ATTRIBUTE t[] = {{CKA_CLASS, &cls, sizeof cls},
                        {CKA_TOKEN, &yes, sizeof yes},
                        {CKA_PRIVATE, &no, sizeof no},
                        {CKA_MODIFIABLE, &yes, sizeof yes},
                        {CKA_LABEL, text.data(), static_cast<CK_ULONG>(text.size())},
                        {CKA_APPLICATION, app_bytes(), app_len()},
                        {CKA_VALUE, about, sizeof about - 1},
                        {CKA_DESTROYABLE, &no, sizeof no}};
    CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
    CK_RV rv = b.call(&CK_FUNCTION_LIST::C_CreateObject, s.handle(), t, CK_ULONG(8), &h);
    if (rv == CKR_ATTRIBUTE_TYPE_INVALID || rv == CKR_ATTRIBUTE_VALUE_INVALID || rv == CKR_TEMPLATE_INCONSISTENT)
        rv = b.call(&CK_FUNCTION_LIST::C_CreateObject, s.handle(), t, CK_ULONG(7), &h);
    return rv;
}

Result<void> apply_key_policy(PinCounts& c, const std::optional<KeyPolicy>& p, const std::string& key_name)
{
    if (!p) {
        if (c.policy_on_key)
            return Error{CKR_PIN_LOCKED,
                         "the Key " + key_name + " carried ukey's PIN policy object (its try limits and transport-PIN "
                         "mark) and it is gone: it was removed around ukey. The Key is treated as locked until it is "
                         "re-initialised (`ukey init`, with the SO PIN)"};
        return {};
    }
    lay_key_policy(c, *p);
    return {};
}

void lay_key_policy(PinCounts& c, const KeyPolicy& p)
{
    c.user_max = p.user_max;
    c.user_left = std::min(c.user_left, c.user_max);
    c.so_max = p.so_max;
    c.so_left = std::min(c.so_left, c.so_max);
    c.user_must_change = p.user_must_change;
    c.policy_on_key = true;
}

bool names_key_policy(const CK_ATTRIBUTE* t, CK_ULONG n)
{
    for (CK_ULONG i = 0; t && i < n; ++i)
        if (t[i].type == CKA_APPLICATION && is_app(t[i]))
            return true;
    return false;
}

bool may_find_key_policy(const CK_ATTRIBUTE* t, CK_ULONG n)
{
    for (CK_ULONG i = 0; t && i < n; ++i) {
        const CK_ATTRIBUTE& a = t[i];
        if (!a.pValue)
            continue;
        auto flag = [&]() -> int { return a.ulValueLen == sizeof(CK_BBOOL) ? *static_cast<CK_BBOOL*>(a.pValue) : -1; };
        switch (a.type) {
        case CKA_CLASS:
            if (a.ulValueLen == sizeof(CK_OBJECT_CLASS) && *static_cast<CK_OBJECT_CLASS*>(a.pValue) != CKO_DATA)
                return false;
            break;
        case CKA_TOKEN:
            if (flag() == CK_FALSE)
                return false;
            break;
        case CKA_PRIVATE:
            if (flag() == CK_TRUE)
                return false;
            break;
        case CKA_APPLICATION:
            if (!is_app(a))
                return false;
            break;
        default:
            break;
        }
    }
    return true;
}

bool is_key_policy(const Backend& b, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h)
{
    CK_OBJECT_CLASS cls = 0;
    CK_ATTRIBUTE c{CKA_CLASS, &cls, sizeof cls};
    if (b.call(&CK_FUNCTION_LIST::C_GetAttributeValue, s, h, &c, CK_ULONG(1)) != CKR_OK || cls != CKO_DATA)
        return false;
    char app[64];
    CK_ATTRIBUTE a{CKA_APPLICATION, app, sizeof app};
    return b.call(&CK_FUNCTION_LIST::C_GetAttributeValue, s, h, &a, CK_ULONG(1)) == CKR_OK && is_app(a);
}

} // namespace ukey
