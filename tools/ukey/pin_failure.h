// A failed PIN check in words a user understands: how many tries are left,
// and what to do when none are.
#pragma once

#include "cli.h"

namespace ukey::cli {

[[noreturn]] void pin_failure(Context& ctx, const client::KeyInfo& k, CK_RV rv, bool so, const std::string& doing);

// The tries left for the user (or SO) PIN, if the module can tell.
std::optional<CK_ULONG> tries_left(Context& ctx, CK_SLOT_ID slot, bool so);

} // namespace ukey::cli
