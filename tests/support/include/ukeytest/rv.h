// Readable CK_RV values for test output, and gtest assertions using them.
#pragma once

#include <ukey/pkcs11.h>

#include <gtest/gtest.h>

#include <initializer_list>
#include <stdexcept>
#include <string>

namespace ukeytest {

// "CKR_ARGUMENTS_BAD (0x7)"; unknown values as hex.
std::string rv_name(CK_RV rv);

// Thrown by the helpers when a PKCS#11 call they need fails.
class P11Error : public std::runtime_error {
public:
    P11Error(const std::string& what, CK_RV rv);
    CK_RV rv() const { return rv_; }

private:
    CK_RV rv_;
};

// Throws P11Error unless rv == CKR_OK.
void check(CK_RV rv, const std::string& what);

// gtest predicate formatters, used by the macros below.
testing::AssertionResult rv_eq(const char* expected_expr, const char* actual_expr, CK_RV expected,
                               CK_RV actual);
testing::AssertionResult rv_in(const char* allowed_expr, const char* actual_expr,
                               std::initializer_list<CK_RV> allowed, CK_RV actual);

}  // namespace ukeytest

#define EXPECT_RV(expected, actual) EXPECT_PRED_FORMAT2(::ukeytest::rv_eq, expected, actual)
#define ASSERT_RV(expected, actual) ASSERT_PRED_FORMAT2(::ukeytest::rv_eq, expected, actual)
// EXPECT_RV_IN(rv, CKR_OK, CKR_NO_EVENT): rv must be one of the listed values.
#define EXPECT_RV_IN(actual, ...) UKEYTEST_RV_IN_(ADD_FAILURE, #actual, #__VA_ARGS__, actual, __VA_ARGS__)
#define ASSERT_RV_IN(actual, ...) UKEYTEST_RV_IN_(FAIL, #actual, #__VA_ARGS__, actual, __VA_ARGS__)
// fail: ADD_FAILURE (the test goes on) or FAIL (it returns). The texts are
// made above, before the arguments' macros (CKR_*) are expanded.
#define UKEYTEST_RV_IN_(fail, actual_text, allowed_text, actual, ...)                      \
    do {                                                                                   \
        if (auto ukeytest_r_ = ::ukeytest::rv_in(allowed_text, actual_text, {__VA_ARGS__}, (actual)); \
            !ukeytest_r_)                                                                  \
            fail() << ukeytest_r_.message();                                               \
    } while (0)
