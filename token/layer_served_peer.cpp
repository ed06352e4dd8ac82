// ServedPeer: in service mode, SO functions (and any login but the user's)
// are for admins only (root and
// [service] admin_groups, docs/service-mode.md). Pushed only in a serving
// child whose peer is not an admin. A user who may use a Key may neither
// log in as its SO (each wrong SO PIN would take one of the admin's tries)
// nor initialise it (which wipes it for every user).
#include "token/log.h"
#include "token/peer_access.h"
#include "token/stack.h"

#include <memory>

namespace ukey {

namespace {

class ServedPeer final : public Layer {
public:
    explicit ServedPeer(uid_t uid) : uid_(uid) {}

private:
    void install(Stack& s) override
    {
        take<&ServedPeer::Login>(s.Login);
        take<&ServedPeer::InitToken>(s.InitToken);
    }

    CK_RV Login(const SessionRoute& r, CK_USER_TYPE type, CK_UTF8CHAR_PTR pin, CK_ULONG len)
    {
        // The user, and the re-authentication of an operation; not the SO,
        // nor a vendor's own user types (a crypto officer and the like).
        if (type == CKU_USER || type == CKU_CONTEXT_SPECIFIC)
            return below().Login(r, type, pin, len);
        refused(type == CKU_SO ? "log in as SO" : "log in as a user type other than the user");
        // Not CKR_PIN_INCORRECT: nothing was tried, and no count changes.
        return CKR_USER_TYPE_INVALID;
    }

    CK_RV InitToken(const SlotEntry&, CK_UTF8CHAR_PTR, CK_ULONG, CK_UTF8CHAR_PTR)
    {
        refused("initialise a Key");
        return CKR_TOKEN_WRITE_PROTECTED;
    }

    void refused(const char* what) const
    {
        log::warning("service mode: uid " + std::to_string(uid_) + " may not " + what +
                     " (only root and [service] admin_groups may)");
    }

    uid_t uid_;
};

} // namespace

std::unique_ptr<Layer> make_served_peer(const LayerContext& ctx)
{
    const auto p = served_peer();
    if (!p || is_admin(ctx.config, *p))
        return nullptr;
    return std::make_unique<ServedPeer>(p->uid);
}

} // namespace ukey
