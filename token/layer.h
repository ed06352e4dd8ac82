// Layers: the policies between the router and one backend, stacked in the
// spirit of p11-kit's p11_virtual, and simpler.
//
// Each backend gets a Stack: a table with one entry per routed function
// (token/functions.h), built once at C_Initialize from the bottom up. A
// layer put on a stack replaces the entries of the functions it overrides
// and keeps a copy of the table under it to call down; every other entry
// still points at whatever was there before, so a layer costs nothing on the
// paths it does not care about (no virtual call, no pass-through function).
//
// A layer sees one backend in the backend's terms, with the route the router
// resolved (SessionRoute: the backend's session handle, the backend slot, the
// Key; SlotEntry for slot functions), and object handles already translated.
// Argument checks (CKR_ARGUMENTS_BAD) and handle checks are done before a
// stack is entered.
//
// A new policy is one new file: a Layer subclass, its factory declared and
// pushed in stack.cpp (docs/architecture.md, "Layers").
#pragma once

#include "token/functions.h"
#include "token/handles.h"
#include "token/slot_table.h"

#include <ukey/pkcs11.h>
#include <ukey/vendor.h>

namespace ukey {

class Layer;

// The slot of a session, for a slot function of the stack (GetTokenInfo,
// OpenSession): the backend and its slot, nothing else.
inline SlotEntry slot_of(const SessionRoute& r)
{
    SlotEntry e;
    e.backend = r.backend;
    e.backend_slot = r.backend_slot;
    return e;
}

// One entry: a layer's function and the layer. Called like the function.
template <class F>
struct Entry;
template <class... A>
struct Entry<CK_RV (*)(Layer*, A...)> {
    CK_RV (*fn)(Layer*, A...) = nullptr;
    Layer* self = nullptr;
    CK_RV operator()(A... a) const { return fn(self, a...); }
};

// Row expansion: only routed rows (session, slot) are in a stack.
#define UKEY_IF_ROUTED_session(...) __VA_ARGS__
#define UKEY_IF_ROUTED_slot(...) __VA_ARGS__
#define UKEY_IF_ROUTED_none(...)
#define UKEY_ROUTE_PARAM_session const SessionRoute& r
#define UKEY_ROUTE_PARAM_slot const SlotEntry& e
#define UKEY_JOIN2_(a, b, ...) (a, b __VA_OPT__(, ) __VA_ARGS__)
#define UKEY_JOIN2(a, b, list) UKEY_JOIN2_(a, b, UKEY_UNPAREN list)
// "(Layer* self, const SessionRoute& r, CK_BYTE_PTR pData, ...)"
#define UKEY_LAYER_PARAMS(route, params) UKEY_JOIN2(Layer* self, UKEY_ROUTE_PARAM_##route, params)
// "(const SessionRoute& r, CK_BYTE_PTR pData, ...)": a layer's method.
#define UKEY_METHOD_PARAMS(route, params) UKEY_JOIN(UKEY_ROUTE_PARAM_##route, params)

struct Stack {
#define UKEY_X(stub, route, name, params, args) UKEY_IF_ROUTED_##route(Entry<CK_RV(*) UKEY_LAYER_PARAMS(route, params)> name;)
    UKEY_ALL_FUNCTIONS(UKEY_X)
#undef UKEY_X
};

// Calls a layer's member function through a plain function pointer.
template <auto Method>
struct Trampoline;
template <class L, class... A, CK_RV (L::*Method)(A...)>
struct Trampoline<Method> {
    static CK_RV call(Layer* self, A... a) { return (static_cast<L*>(self)->*Method)(a...); }
};

class Layer {
public:
    virtual ~Layer() = default;
    // Puts this layer on top of `stack`: the functions it overrides now
    // come here first; below() is the stack as it was.
    void push_onto(Stack& stack)
    {
        below_ = stack;
        install(stack);
    }

protected:
    // Sets this layer's entries in `s` with take<&L::Name>(s.Name).
    virtual void install(Stack& s) = 0;
    template <auto Method, class E>
    void take(E& entry)
    {
        entry.fn = &Trampoline<Method>::call;
        entry.self = this;
    }

public:
    // The stack under this layer: where its calls go down.
    const Stack& below() const { return below_; }
    // Puts After<M, Post> (below) on entry M: the answer of the layers
    // under it, then Post.
    template <auto M, CK_RV (*Post)(Layer*, const SessionRoute&, CK_RV)>
    void after(Stack& s);

private:
    Stack below_;
};

// A session function of the stack below, then Post(self, route, its answer):
// for layers that only correct or watch an answer.
template <auto M, CK_RV (*Post)(Layer*, const SessionRoute&, CK_RV)>
struct After;
template <class... A, Entry<CK_RV (*)(Layer*, const SessionRoute&, A...)> Stack::*M,
          CK_RV (*Post)(Layer*, const SessionRoute&, CK_RV)>
struct After<M, Post> {
    static CK_RV call(Layer* self, const SessionRoute& r, A... a) { return Post(self, r, (self->below().*M)(r, a...)); }
};

template <auto M, CK_RV (*Post)(Layer*, const SessionRoute&, CK_RV)>
void Layer::after(Stack& s)
{
    (s.*M).fn = &After<M, Post>::call;
    (s.*M).self = this;
}

} // namespace ukey
