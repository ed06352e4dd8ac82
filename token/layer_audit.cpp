// Audit: a record of every security event (token/audit_log.h) — placeholder
// until the audit log lands: no layer.
#include "token/stack.h"

#include <memory>

namespace ukey {

std::unique_ptr<Layer> make_audit(const LayerContext&, const Backend&)
{
    return nullptr;
}

} // namespace ukey
