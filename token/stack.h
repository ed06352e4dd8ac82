// A backend's stack of layers (token/layer.h), built at C_Initialize.
#pragma once

#include "token/config.h"
#include "token/layer.h"

#include <memory>
#include <vector>

namespace ukey {

class Backend;
class SessionTable;

// What a layer may know of the module around it.
struct LayerContext {
    const Config& config;
    const SessionTable& sessions;
    const MutexCallbacks* callbacks; // the application's locks, or nullptr for the OS's
};

class BackendStack {
public:
    BackendStack(Backend& backend, const LayerContext& ctx);
    BackendStack(const BackendStack&) = delete;
    BackendStack& operator=(const BackendStack&) = delete;

    // The table the router calls: each entry is its topmost layer's.
    const Stack& top() const { return top_; }

private:
    Stack top_;
    std::vector<std::unique_ptr<Layer>> layers_; // bottom first
};

} // namespace ukey
