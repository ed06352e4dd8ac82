// Typed results: a value, or a CK_RV with a sentence saying what went wrong.
// The one error style of token/, client/ and the tools (exceptions only
// inside the CLI): Result<T> for a value or an Error, Result<void> for
// success or an Error. [[nodiscard]]: an unread failure is a bug.
#pragma once

#include <ukey/pkcs11.h>

#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace ukey {

struct Error {
    CK_RV rv = CKR_GENERAL_ERROR;
    std::string message;
};

template <class T>
class [[nodiscard]] Result {
public:
    Result(T value) : v_(std::move(value)) {}
    Result(Error e) : v_(std::move(e)) {}

    explicit operator bool() const { return v_.index() == 0; }
    T& value() { return std::get<0>(v_); }
    const T& value() const { return std::get<0>(v_); }
    T& operator*() { return value(); }
    const T& operator*() const { return value(); }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }
    const Error& error() const { return std::get<1>(v_); }

private:
    std::variant<T, Error> v_;
};

// Success (`return {};`) or an Error.
template <>
class [[nodiscard]] Result<void> {
public:
    Result() = default;
    Result(Error e) : e_(std::move(e)) {}

    explicit operator bool() const { return !e_; }
    const Error& error() const { return *e_; }

private:
    std::optional<Error> e_;
};

} // namespace ukey
