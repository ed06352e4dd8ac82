// A PIN in memory: wiped with OPENSSL_cleanse when it goes, never copied.
#pragma once

#include <openssl/crypto.h>

#include <ukey/pkcs11.h>

#include <string>
#include <utility>
#include <vector>

namespace ukey::client {

class Secret {
public:
    Secret() = default;
    explicit Secret(std::string_view s) : bytes_(s.begin(), s.end()) {}
    Secret(Secret&& o) noexcept : bytes_(std::move(o.bytes_)) {}
    Secret& operator=(Secret&& o) noexcept
    {
        wipe();
        bytes_ = std::move(o.bytes_);
        return *this;
    }
    Secret(const Secret&) = delete;
    Secret& operator=(const Secret&) = delete;
    ~Secret() { wipe(); }

    void push_back(unsigned char c)
    {
        // Grow by hand so no reallocation leaves an unwiped copy behind.
        if (bytes_.size() == bytes_.capacity()) {
            std::vector<unsigned char> bigger;
            bigger.reserve(bytes_.capacity() * 2 + 32);
            bigger.assign(bytes_.begin(), bytes_.end());
            wipe();
            bytes_ = std::move(bigger);
        }
        bytes_.push_back(c);
    }
    void pop_back()
    {
        if (!bytes_.empty()) {
            bytes_.back() = 0;
            bytes_.pop_back();
        }
    }
    bool empty() const { return bytes_.empty(); }
    std::size_t size() const { return bytes_.size(); }
    CK_UTF8CHAR_PTR data() { return bytes_.data(); }
    const unsigned char* data() const { return bytes_.data(); }
    bool operator==(const Secret& o) const { return bytes_ == o.bytes_; }

    void wipe()
    {
        if (!bytes_.empty())
            OPENSSL_cleanse(bytes_.data(), bytes_.size());
        bytes_.clear();
    }

private:
    std::vector<unsigned char> bytes_;
};

} // namespace ukey::client
