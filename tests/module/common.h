// Shared bits of the module-level suites.
#pragma once

#include "ukeytest/env.h"
#include "ukeytest/keys.h"
#include "ukeytest/module.h"
#include "ukeytest/process.h"
#include "ukeytest/rv.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <utility>

#ifndef UKEY_MODULE_PATH
#error "UKEY_MODULE_PATH must be defined (path of libukey-pkcs11.so)"
#endif

namespace modtest {

// The module under test ($UKEY_TEST_MODULE overrides, see ukeytest/module.h).
inline std::string module_path()
{
    return ukeytest::module_under_test(UKEY_MODULE_PATH);
}

// Default PINs of TestEnv tokens.
inline const ukeytest::TokenSpec kDefaultToken{};

// A TestEnv and the module under test loaded on it, not initialised. The
// module goes first at the end: C_Finalize runs while its tokens still exist.
// Base: testing::Test, or testing::TestWithParam<P> for a parameterised suite.
template <class Base = testing::Test>
class ModuleTest : public Base {
protected:
    void load(std::unique_ptr<ukeytest::TestEnv> env)
    {
        env_ = std::move(env);
        module_ = std::make_unique<ukeytest::Module>(module_path());
    }
    void TearDown() override
    {
        module_.reset();
        env_.reset();
    }
    CK_FUNCTION_LIST* fl() { return module_->fl(); }

    std::unique_ptr<ukeytest::TestEnv> env_;
    std::unique_ptr<ukeytest::Module> module_;
};

}  // namespace modtest
