#include "token/pin_rules.h"

#include <algorithm>
#include <cstring>

namespace ukey {

namespace {
bool trivial(const CK_UTF8CHAR* p, CK_ULONG n)
{
    if (n < 2)
        return false;
    bool same = true, up = true, down = true;
    for (CK_ULONG i = 1; i < n; ++i) {
        same = same && p[i] == p[0];
        up = up && p[i] == p[i - 1] + 1;
        down = down && p[i] + 1 == p[i - 1];
    }
    return same || up || down;
}
} // namespace

CK_RV check_new_pin(const CK_UTF8CHAR* pin, CK_ULONG len, const CK_TOKEN_INFO& token, const PinRules& rules,
                    const CK_UTF8CHAR* old, CK_ULONG old_len)
{
    const CK_ULONG min_len = std::max<CK_ULONG>(token.ulMinPinLen, rules.min_length);
    if (len < min_len || (token.ulMaxPinLen && len > token.ulMaxPinLen))
        return CKR_PIN_LEN_RANGE;
    if (!pin)
        return CKR_OK; // protected authentication path: the reader takes the PIN
    if (rules.reject_trivial) {
        if (trivial(pin, len))
            return CKR_PIN_INVALID;
        if (old && old_len == len && std::memcmp(old, pin, len) == 0)
            return CKR_PIN_INVALID;
    }
    return CKR_OK;
}

void apply_pin_flags(CK_TOKEN_INFO& t, const Result<PinCounts>& counts)
{
    t.flags &= ~(CKF_USER_PIN_COUNT_LOW | CKF_USER_PIN_FINAL_TRY | CKF_USER_PIN_LOCKED | CKF_SO_PIN_COUNT_LOW |
                 CKF_SO_PIN_FINAL_TRY | CKF_SO_PIN_LOCKED);
    if (!counts) {
        t.flags |= CKF_USER_PIN_LOCKED | CKF_SO_PIN_LOCKED;
        return;
    }
    const PinCounts& c = *counts;
    auto set = [&](unsigned left, unsigned max, CK_FLAGS low, CK_FLAGS final_try, CK_FLAGS locked) {
        if (left < max)
            t.flags |= low;
        if (left == 1)
            t.flags |= final_try;
        if (left == 0)
            t.flags |= locked;
    };
    set(c.user_left, c.user_max, CKF_USER_PIN_COUNT_LOW, CKF_USER_PIN_FINAL_TRY, CKF_USER_PIN_LOCKED);
    set(c.so_left, c.so_max, CKF_SO_PIN_COUNT_LOW, CKF_SO_PIN_FINAL_TRY, CKF_SO_PIN_LOCKED);
    if (c.user_must_change)
        t.flags |= CKF_USER_PIN_TO_BE_CHANGED;
}

} // namespace ukey
