// The order of the layers, bottom to top, and which a backend gets. Adding a
// policy: declare its factory here and push it where it belongs.
#include "token/stack.h"

#include "token/backend.h"

namespace ukey {

// Each factory is defined in the layer's own file.
std::unique_ptr<Layer> make_backend_calls();              // layer_backend.cpp: the backend module itself
std::unique_ptr<Layer> make_backend_fixes();              // layer_fixes.cpp: docs/backend-fixes.md
std::unique_ptr<Layer> make_key_policy_object(const LayerContext&); // layer_policy_object.cpp: ukey's object on a Key
std::unique_ptr<Layer> make_pin_policy(const LayerContext&); // pin_policy*.cpp: counting, lockout, transport PINs
std::unique_ptr<Layer> make_pin_quality(const LayerContext&); // layer_pin_quality.cpp: rules for new PINs
std::unique_ptr<Layer> make_audit(const LayerContext&, const Backend&); // layer_audit.cpp: the audit log
std::unique_ptr<Layer> make_served_peer(const LayerContext&); // layer_served_peer.cpp: SO functions for admins only

BackendStack::BackendStack(Backend& backend, const LayerContext& ctx)
{
    auto push = [&](std::unique_ptr<Layer> l) {
        if (!l)
            return;
        l->push_onto(top_);
        layers_.push_back(std::move(l));
    };
    push(make_backend_calls());
    if (backend.fixes())
        push(make_backend_fixes());
    push(make_key_policy_object(ctx));
    if (backend.pin_counter() == PinCounter::ukey)
        push(make_pin_policy(ctx));
    push(make_pin_quality(ctx));
    push(make_audit(ctx, backend));
    // Above the audit log: a refused SO login reaches no PIN and is no
    // login attempt (the warning in ukey's log says who tried).
    push(make_served_peer(ctx));
}

} // namespace ukey
