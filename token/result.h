// Typed results: a value, or a CK_RV with a sentence saying what went wrong.
#pragma once

#include <ukey/pkcs11.h>

#include <string>
#include <utility>
#include <variant>

namespace ukey {

struct Error {
    CK_RV rv = CKR_GENERAL_ERROR;
    std::string message;
};

template <class T>
class Result {
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

} // namespace ukey
