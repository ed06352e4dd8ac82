// Audit: one record in the audit log (token/audit_log.h, docs/audit.md) for
// each security event that passes through the module: logins (right or
// wrong), a PIN locked by its last try, PIN changes, unlocks, C_InitToken,
// key generation, certificates and keys created or destroyed. On top of
// the stack, so that it records what the application was told. Never a
// PIN. A record that cannot be written never fails the call: it is logged,
// once per reason.
#include "token/audit_log.h"
#include "token/backend.h"
#include "token/key_policy.h"
#include "token/log.h"
#include "token/stack.h"

#include <memory>
#include <mutex>
#include <set>
#include <string>

namespace ukey {

namespace {

std::string user_type_name(CK_USER_TYPE t)
{
    switch (t) {
    case CKU_USER: return "user";
    case CKU_SO: return "so";
    case CKU_CONTEXT_SPECIFIC: return "context-specific";
    default: return "vendor-" + std::to_string(t);
    }
}

// The attribute of a template, as text (CKA_LABEL) or a number (CKA_CLASS).
std::string label_in(const CK_ATTRIBUTE* t, CK_ULONG n)
{
    for (CK_ULONG i = 0; t && i < n; ++i)
        if (t[i].type == CKA_LABEL && t[i].pValue && t[i].ulValueLen < audit_field_max)
            return std::string(static_cast<const char*>(t[i].pValue), t[i].ulValueLen);
    return {};
}

std::optional<CK_OBJECT_CLASS> class_in(const CK_ATTRIBUTE* t, CK_ULONG n)
{
    for (CK_ULONG i = 0; t && i < n; ++i)
        if (t[i].type == CKA_CLASS && t[i].pValue && t[i].ulValueLen == sizeof(CK_OBJECT_CLASS))
            return *static_cast<const CK_OBJECT_CLASS*>(t[i].pValue);
    return std::nullopt;
}

// Certificates and keys are what an audit asks about; data objects are not.
const char* audited_class(CK_OBJECT_CLASS c)
{
    switch (c) {
    case CKO_CERTIFICATE: return "certificate";
    case CKO_PRIVATE_KEY: return "private-key";
    case CKO_PUBLIC_KEY: return "public-key";
    case CKO_SECRET_KEY: return "secret-key";
    default: return nullptr;
    }
}

std::string detail_of(const char* cls, const std::string& label)
{
    return label.empty() ? std::string(cls) : std::string(cls) + " \"" + label + "\"";
}

// A token that is not initialised has no identity yet: its place.
std::string unknown_key(const Backend& b, CK_SLOT_ID backend_slot)
{
    return "(" + b.name() + ", slot " + std::to_string(backend_slot) + ", not initialised)";
}

class Audit final : public Layer {
public:
    explicit Audit(std::unique_ptr<AuditLog> log) : log_(std::move(log)) {}

private:
    void install(Stack& s) override
    {
        take<&Audit::Login>(s.Login);
        take<&Audit::SetPIN>(s.SetPIN);
        take<&Audit::InitPIN>(s.InitPIN);
        take<&Audit::UkeyInitTransportPIN>(s.UkeyInitTransportPIN);
        take<&Audit::InitToken>(s.InitToken);
        take<&Audit::GenerateKey>(s.GenerateKey);
        take<&Audit::GenerateKeyPair>(s.GenerateKeyPair);
        take<&Audit::CreateObject>(s.CreateObject);
        take<&Audit::DestroyObject>(s.DestroyObject);
    }

    CK_RV Login(const SessionRoute& r, CK_USER_TYPE type, CK_UTF8CHAR_PTR pin, CK_ULONG len)
    {
        const CK_RV rv = below().Login(r, type, pin, len);
        record(r, rv == CKR_OK ? AuditKind::login : AuditKind::login_failed, user_type_name(type), rv);
        locked_by(r, type, rv);
        return rv;
    }

    CK_RV SetPIN(const SessionRoute& r, CK_UTF8CHAR_PTR old_pin, CK_ULONG old_len, CK_UTF8CHAR_PTR new_pin,
                 CK_ULONG new_len)
    {
        const CK_USER_TYPE who = session_user(r);
        const CK_RV rv = below().SetPIN(r, old_pin, old_len, new_pin, new_len);
        record(r, AuditKind::set_pin, user_type_name(who), rv);
        locked_by(r, who, rv);
        return rv;
    }

    CK_RV InitPIN(const SessionRoute& r, CK_UTF8CHAR_PTR pin, CK_ULONG len)
    {
        const bool was_locked = user_pin_locked(r);
        const CK_RV rv = below().InitPIN(r, pin, len);
        record(r, AuditKind::init_pin, "so", rv);
        if (rv == CKR_OK && was_locked)
            record(r, AuditKind::pin_unlocked, "so", rv, "the user PIN was locked");
        return rv;
    }

    CK_RV UkeyInitTransportPIN(const SessionRoute& r, CK_UTF8CHAR_PTR pin, CK_ULONG len)
    {
        const bool was_locked = user_pin_locked(r);
        const CK_RV rv = below().UkeyInitTransportPIN(r, pin, len);
        record(r, AuditKind::init_pin, "so", rv, "transport PIN");
        if (rv == CKR_OK && was_locked)
            record(r, AuditKind::pin_unlocked, "so", rv, "the user PIN was locked");
        return rv;
    }

    CK_RV InitToken(const SlotEntry& e, CK_UTF8CHAR_PTR pin, CK_ULONG len, CK_UTF8CHAR_PTR label)
    {
        const std::string before = key_text(e);
        const CK_RV rv = below().InitToken(e, pin, len, label);
        std::string l(reinterpret_cast<const char*>(label), 32);
        l.erase(l.find_last_not_of(' ') + 1);
        append(AuditEvent{AuditKind::init_token, before, "so", rv, "label \"" + l + "\""});
        return rv;
    }

    CK_RV GenerateKey(const SessionRoute& r, CK_MECHANISM_PTR m, CK_ATTRIBUTE_PTR t, CK_ULONG n,
                      CK_OBJECT_HANDLE_PTR out)
    {
        const CK_RV rv = below().GenerateKey(r, m, t, n, out);
        record(r, AuditKind::key_generated, "", rv, detail_of("secret-key", label_in(t, n)));
        return rv;
    }

    CK_RV GenerateKeyPair(const SessionRoute& r, CK_MECHANISM_PTR m, CK_ATTRIBUTE_PTR pub, CK_ULONG npub,
                          CK_ATTRIBUTE_PTR priv, CK_ULONG npriv, CK_OBJECT_HANDLE_PTR hpub,
                          CK_OBJECT_HANDLE_PTR hpriv)
    {
        const CK_RV rv = below().GenerateKeyPair(r, m, pub, npub, priv, npriv, hpub, hpriv);
        record(r, AuditKind::key_generated, "", rv, detail_of("key-pair", label_in(priv, npriv)));
        return rv;
    }

    CK_RV CreateObject(const SessionRoute& r, CK_ATTRIBUTE_PTR t, CK_ULONG n, CK_OBJECT_HANDLE_PTR out)
    {
        const CK_RV rv = below().CreateObject(r, t, n, out);
        if (auto c = class_in(t, n); c && audited_class(*c))
            record(r, AuditKind::object_created, "", rv, detail_of(audited_class(*c), label_in(t, n)));
        return rv;
    }

    CK_RV DestroyObject(const SessionRoute& r, CK_OBJECT_HANDLE h)
    {
        // What it was, asked before it is gone.
        CK_OBJECT_CLASS cls = CKO_DATA;
        char label[audit_field_max];
        CK_ATTRIBUTE a[] = {{CKA_CLASS, &cls, sizeof cls}, {CKA_LABEL, label, sizeof label}};
        const bool known = below().GetAttributeValue(r, h, a, 2) == CKR_OK;
        const CK_RV rv = below().DestroyObject(r, h);
        if (known && audited_class(cls))
            record(r, AuditKind::object_destroyed, "", rv,
                   detail_of(audited_class(cls), std::string(label, a[1].ulValueLen)));
        return rv;
    }

    // A wrong PIN that used up the last try: the token (or ukey's count
    // below) now says locked.
    void locked_by(const SessionRoute& r, CK_USER_TYPE who, CK_RV rv)
    {
        if (rv != CKR_PIN_INCORRECT && rv != CKR_PIN_LOCKED)
            return;
        CK_TOKEN_INFO info;
        if (below().GetTokenInfo(slot_of(r), &info) != CKR_OK)
            return;
        const CK_FLAGS flag = who == CKU_SO ? CKF_SO_PIN_LOCKED : CKF_USER_PIN_LOCKED;
        if (rv == CKR_PIN_INCORRECT && (info.flags & flag))
            record(r, AuditKind::pin_locked, user_type_name(who), rv);
    }

    bool user_pin_locked(const SessionRoute& r)
    {
        CK_TOKEN_INFO info;
        return below().GetTokenInfo(slot_of(r), &info) == CKR_OK && (info.flags & CKF_USER_PIN_LOCKED);
    }

    CK_USER_TYPE session_user(const SessionRoute& r)
    {
        CK_SESSION_INFO si;
        if (below().GetSessionInfo(r, &si) == CKR_OK && si.state == CKS_RW_SO_FUNCTIONS)
            return CKU_SO;
        return CKU_USER;
    }

    std::string key_text(const SlotEntry& e)
    {
        if (e.names_key)
            return key_name(e.key);
        CK_TOKEN_INFO info;
        if (read_token_info(*e.backend, e.backend_slot, info) == CKR_OK && (info.flags & CKF_TOKEN_INITIALIZED))
            return key_name(key_id(e.backend->name(), info));
        return unknown_key(*e.backend, e.backend_slot);
    }

    void record(const SessionRoute& r, AuditKind kind, std::string user_type, CK_RV rv, std::string detail = {})
    {
        std::string key = r.key ? key_name(*r.key) : unknown_key(*r.backend, r.backend_slot);
        append(AuditEvent{kind, std::move(key), std::move(user_type), rv, std::move(detail)});
    }

    void append(const AuditEvent& e)
    {
        auto done = log_->append(e);
        if (done)
            return;
        std::lock_guard<std::mutex> g(warned_lock_);
        if (warned_.size() < 16 && warned_.insert(done.error().message).second)
            log::warning("audit log: " + done.error().message);
    }

    std::unique_ptr<AuditLog> log_;
    std::mutex warned_lock_;
    std::set<std::string> warned_;
};

} // namespace

std::unique_ptr<Layer> make_audit(const LayerContext& ctx, const Backend&)
{
    auto log = AuditLog::open(ctx.config.audit);
    if (!log) {
        log::warning("audit log: " + log.error().message + " (no audit records for this process)");
        return nullptr;
    }
    if (!*log)
        return nullptr; // [audit] enabled = false
    return std::make_unique<Audit>(std::move(*log));
}

} // namespace ukey
