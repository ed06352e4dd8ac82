// Mechanism parameters that carry object handles. A few mechanisms pass key
// handles inside pParameter (in) or return new key handles there (out); those
// must be translated like any other handle. The list is in
// docs/architecture.md; other parameters pass through untouched.
#pragma once

#include "token/handles.h"

#include <cstddef>

namespace ukey {

class BackendMechanism {
public:
    // Copies `app`, translating handles inside its parameter (carrying `tag`) to the backend's.
    // CKR_OK, CKR_KEY_HANDLE_INVALID or CKR_MECHANISM_PARAM_INVALID.
    CK_RV init(const CK_MECHANISM& app, const ObjectHandles& objects, unsigned tag);
    CK_MECHANISM* get() { return &m_; }

private:
    CK_MECHANISM m_{};
    alignas(std::max_align_t) unsigned char param_[128];
};

// After a successful C_DeriveKey: handles the backend wrote into the
// application's parameter (SSL3/TLS/WTLS key material) become application
// handles.
void translate_derived_handles(const CK_MECHANISM& app, ObjectHandles& objects, unsigned tag);

} // namespace ukey
