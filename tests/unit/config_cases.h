// What the config tests share: the smallest valid config, and the error a
// config text must give.
#pragma once

#include <gtest/gtest.h>

#include <string>

namespace config_cases {

inline const char* one_backend = R"(
[[backend]]
name = "softhsm"
module = "/usr/lib/softhsm/libsofthsm2.so"
)";

// The message of a parse that must fail.
template <class Parsed>
std::string error_message(const Parsed& r, const std::string& text)
{
    EXPECT_FALSE(r) << "expected an error for:\n" << text;
    return r ? std::string() : r.error().message;
}

// The message of `parse` (parse_config, parse_tool_config) on `text` as
// /etc/ukey/ukey.conf, which must fail.
template <class Parse>
std::string error_of(Parse parse, const std::string& text)
{
    return error_message(parse(text, "/etc/ukey/ukey.conf"), text);
}

} // namespace config_cases
