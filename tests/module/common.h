// Shared bits of the module-level suites.
#pragma once

#include "ukeytest/env.h"
#include "ukeytest/keys.h"
#include "ukeytest/module.h"
#include "ukeytest/process.h"
#include "ukeytest/rv.h"

#include <gtest/gtest.h>

#include <string>

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

}  // namespace modtest
