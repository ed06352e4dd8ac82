// ukey doctor's reading of Chromium's AutoSelectCertificateForUrls policy
// (tools/ukey/doctor/auto_select.*): the policy folders are fixed at build
// time under /etc, which tests cannot write, so the parsing and matching are
// tested here on their own, and the check's wiring (cli.doctor_url) only
// with no policy present.
#include "tools/ukey/doctor/auto_select.h"

#include "client/ossl.h"

#include <gtest/gtest.h>

#include <openssl/x509.h>

namespace ukey::cli::doctor {
namespace {

client::X509Ptr cert(const char* issuer_cn, const char* issuer_o, const char* subject_cn)
{
    client::X509Ptr x(X509_new(), X509_free);
    auto add = [](X509_NAME* n, const char* field, const char* v) {
        if (v)
            X509_NAME_add_entry_by_txt(n, field, MBSTRING_UTF8, reinterpret_cast<const unsigned char*>(v), -1, -1, 0);
    };
    add(X509_get_issuer_name(x.get()), "O", issuer_o);
    add(X509_get_issuer_name(x.get()), "OU", "Users");
    add(X509_get_issuer_name(x.get()), "OU", "Staff");
    add(X509_get_issuer_name(x.get()), "CN", issuer_cn);
    add(X509_get_subject_name(x.get()), "CN", subject_cn);
    return x;
}

const char* policy = R"({
  "AutoSelectCertificateForUrls": [
    "{\"pattern\":\"https://[*.]example.com\",\"filter\":{\"ISSUER\":{\"CN\":\"Example CA\",\"OU\":\"Staff\"}}}",
    "{\"pattern\":\"https://login.test:8443\",\"filter\":{\"SUBJECT\":{\"CN\":\"Alice\"}}}",
    "{\"pattern\":\"*\",\"filter\":{}}",
    "not json",
    42,
    "{\"pattern\":\"https://nofilter.test\"}"
  ],
  "SomeOtherPolicy": true
})";

TEST(DoctorAutoSelect, ParsesTheRulesChromiumWouldUse)
{
    const auto rules = parse_auto_select("/etc/chromium/policies/managed/certs.json", policy);
    ASSERT_EQ(rules.size(), 3u);
    EXPECT_EQ(rules[0].pattern, "https://[*.]example.com");
    ASSERT_TRUE(rules[0].issuer);
    EXPECT_EQ(rules[0].issuer->cn, "Example CA");
    EXPECT_EQ(rules[0].issuer->ou, "Staff");
    EXPECT_FALSE(rules[0].issuer->o);
    EXPECT_FALSE(rules[0].subject);
    ASSERT_TRUE(rules[1].subject);
    EXPECT_EQ(rules[1].subject->cn, "Alice");
    EXPECT_FALSE(rules[2].issuer);
    EXPECT_EQ(rules[2].file, "/etc/chromium/policies/managed/certs.json");
    EXPECT_TRUE(parse_auto_select("f", "[]").empty());
    EXPECT_TRUE(parse_auto_select("f", "{\"AutoSelectCertificateForUrls\": \"x\"}").empty());
    EXPECT_TRUE(parse_auto_select("f", "{").empty());
}

TEST(DoctorAutoSelect, PatternsAsContentSettings)
{
    struct Case {
        const char* pattern;
        const char* url;
        bool matches;
    };
    const Case cases[] = {
        {"https://[*.]example.com", "https://example.com/login", true},
        {"https://[*.]example.com", "https://www.EXAMPLE.com/", true},
        {"https://[*.]example.com", "https://badexample.com/", false},
        {"https://[*.]example.com", "https://example.com:8443/", false}, // the scheme's port
        {"https://www.example.com", "https://www.example.com:443/x", true},
        {"https://www.example.com", "https://example.com/", false},
        {"http://www.example.com", "https://www.example.com/", false},
        {"https://login.test:8443", "https://login.test:8443/a", true},
        {"https://login.test:8443", "https://login.test/a", false},
        {"https://login.test:*", "https://login.test:9/a", true},
        {"[*.]example.com", "https://a.example.com:8443/", true}, // no scheme: any port
        {"*", "https://anything.test/", true},
        {"https://*", "https://anything.test/", true},
        {"https://*", "https://anything.test:1234/", false},
        {"https://*:*", "https://anything.test:1234/", true},
        {"https://example.com", "not a url", false},
    };
    for (const auto& c : cases)
        EXPECT_EQ(url_matches(c.pattern, c.url), c.matches) << c.pattern << " against " << c.url;
}

TEST(DoctorAutoSelect, FiltersOnIssuerAndSubject)
{
    const auto rules = parse_auto_select("f", policy);
    const auto good = cert("Example CA", "Example", "Alice");
    const auto other_ca = cert("Other CA", "Example", "Alice");
    const auto no_ou = client::X509Ptr(X509_new(), X509_free);
    X509_NAME_add_entry_by_txt(X509_get_issuer_name(no_ou.get()), "CN", MBSTRING_UTF8,
                               reinterpret_cast<const unsigned char*>("Example CA"), -1, -1, 0);
    EXPECT_TRUE(cert_matches(rules[0], good.get()));     // CN equal, OU one of two
    EXPECT_FALSE(cert_matches(rules[0], other_ca.get())); // CN differs
    EXPECT_FALSE(cert_matches(rules[0], no_ou.get()));    // OU missing
    EXPECT_TRUE(cert_matches(rules[1], other_ca.get()));  // subject CN only
    EXPECT_FALSE(cert_matches(rules[1], cert("Example CA", "Example", "Bob").get()));
    EXPECT_TRUE(cert_matches(rules[2], no_ou.get()));     // {}: any
}

TEST(DoctorAutoSelect, NoPolicyFolderIsNoRule)
{
    const char* dirs[] = {"/nonexistent/ukey-test/policies"};
    EXPECT_TRUE(read_auto_select(dirs).empty());
}

} // namespace
} // namespace ukey::cli::doctor
