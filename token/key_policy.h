// The PIN policy a Key carries itself (docs/pin-policy.md, "The policy on
// the Key"): its try limits and whether its PIN is a transport PIN that must
// be changed. Set by an SO (`ukey init`), so that ukey on any account or
// machine enforces them; the try counts stay in each user's state
// (pin_store.h).
//
// It is a public token data object (readable before login, which is when
// ukey needs it), CKA_APPLICATION "ukey-policy", whose CKA_LABEL is the
// record:
//
//     ukey-policy 1 user_max=3 so_max=3 must_change=1
//
// (the label, because SoftHSM2, like the spec's data objects, keeps
// CKA_VALUE fixed after creation, while a label may change).
// Through ukey, applications never see it (C_FindObjects skips it) and
// cannot create, change, copy or destroy it; only the vendor functions and
// the PIN functions write it. Code that talks to the backend directly can;
// see the threat model in docs/pin-policy.md.
#pragma once

#include "token/backend.h"
#include "token/pin_store.h"
#include "token/result.h"

#include <optional>
#include <string>

namespace ukey {

struct KeyPolicy {
    unsigned user_max = 6, so_max = 6;
    bool user_must_change = false;
    bool operator==(const KeyPolicy&) const = default;
};

inline constexpr const char* key_policy_application = "ukey-policy";

std::string format_key_policy(const KeyPolicy& p);
// "(backend, serial S)": a Key in log lines.
std::string key_name(const KeyId& key);
std::optional<KeyPolicy> parse_key_policy(const std::string& text);

// What the Key in backend_slot carries: nothing, one policy, or an error:
// CKR_PIN_LOCKED when it carries something ukey cannot trust (several
// policy objects, an unreadable record), the backend's code when it cannot
// be asked. A backend that keeps no objects carries nothing.
Result<std::optional<KeyPolicy>> read_key_policy(const Backend& b, CK_SLOT_ID backend_slot);

// Creates or rewrites the Key's policy object in a session of ukey's own
// (the token's login state is shared by all sessions: an SO or user login,
// or a public R/W session where the backend allows public writes).
CK_RV write_key_policy(const Backend& b, CK_SLOT_ID backend_slot, const KeyPolicy& p);

// The local counts under what the Key carries: limits from the Key (the
// counts capped by them), its must-change mark, and policy_on_key set. A
// Key that had a policy object and lost it is an error (CKR_PIN_LOCKED):
// fail closed.
Result<void> apply_key_policy(PinCounts& c, const std::optional<KeyPolicy>& p, const std::string& key_name);
// The same for a policy the Key does carry: it cannot fail.
void lay_key_policy(PinCounts& c, const KeyPolicy& p);

// An application's template that would make an object look like the policy
// object (CKA_APPLICATION "ukey-policy").
bool names_key_policy(const CK_ATTRIBUTE* t, CK_ULONG n);
// A find template that may match the policy object (so results must be
// checked); a template for another class, private or session objects, or
// another application cannot.
bool may_find_key_policy(const CK_ATTRIBUTE* t, CK_ULONG n);
// Whether the backend object is the policy object (false if unknown).
bool is_key_policy(const Backend& b, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h);

} // namespace ukey
