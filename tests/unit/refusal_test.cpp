// client/refusal.h: the CA's refusal record (P15) round-trips, and damaged or
// hostile records are refused with a reason instead of being trusted.
#include "client/refusal.h"

#include <gtest/gtest.h>

#include <string>

using namespace ukey::client;

TEST(Refusal, RoundTrips)
{
    Refusal r;
    r.time = 1796600000;
    r.operation = "renew";
    r.ca = "http://ca.example/scep";
    r.fail_info = 2;
    r.fail_text = "badRequest: the CA refused the request";
    r.cert_serial = "1a2b";
    r.cert_label = "Alice \x1b[31m";
    auto back = parse_refusal(refusal_text(r));
    ASSERT_TRUE(back) << back.error().message;
    EXPECT_EQ(back->time, r.time);
    EXPECT_EQ(back->operation, r.operation);
    EXPECT_EQ(back->ca, r.ca);
    EXPECT_EQ(back->fail_info, 2);
    EXPECT_EQ(back->fail_text, r.fail_text);
    EXPECT_EQ(back->cert_serial, r.cert_serial);
    EXPECT_EQ(back->cert_label, r.cert_label);
}

TEST(Refusal, DamagedRecordsSayWhy)
{
    const std::string ok = R"({"time":1,"operation":"renew","ca":"u","fail_info":2,"fail_text":"t","cert_serial":"","cert_label":""})";
    ASSERT_TRUE(parse_refusal(ok));
    struct Case {
        std::string text, why;
    };
    const Case cases[] = {
        {"", "not a JSON object"},
        {"[1]", "not a JSON object"},
        {R"({"time":"x"})", "time"},
        {R"({"time":-5,"fail_info":2})", "time"},
        {R"({"time":1,"fail_info":9,"operation":"renew"})", "fail_info"},
        {R"({"time":1,"operation":"delete","ca":"u","fail_info":2,"fail_text":"t","cert_serial":"","cert_label":""})",
         "operation"},
        {R"({"time":1,"operation":"renew","ca":7,"fail_info":2,"fail_text":"t","cert_serial":"","cert_label":""})", "ca"},
        {R"({"time":1,"operation":"renew","ca":"u","fail_info":2,"fail_text":")" + std::string(2000, 'x') +
             R"(","cert_serial":"","cert_label":""})",
         "fail_text"},
    };
    for (const Case& c : cases) {
        auto r = parse_refusal(c.text);
        ASSERT_FALSE(r) << c.text;
        EXPECT_NE(r.error().message.find(c.why), std::string::npos) << c.text << ": " << r.error().message;
    }
}

TEST(Refusal, KeptBesideTheStateNotAmongJournals)
{
    EXPECT_EQ(refusal_path("/s/renewal/00ff.json"), "/s/ca-refusals/00ff.json");
}
