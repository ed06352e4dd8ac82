// token/escape.*: what reaches a terminal or a log from a hostile Key.
#include "token/escape.h"

#include <gtest/gtest.h>

using ukey::escape::printable;
using ukey::escape::printable_json;

TEST(Escape, PrintableUtf8PassesUnchanged)
{
    EXPECT_EQ(printable("Alice O'Brien, CN=x"), "Alice O'Brien, CN=x");
    EXPECT_EQ(printable("\xe4\xb8\xad\xe6\x96\x87"), "\xe4\xb8\xad\xe6\x96\x87"); // 中文
    EXPECT_EQ(printable("caf\xc3\xa9 \xf0\x9f\x94\x91"), "caf\xc3\xa9 \xf0\x9f\x94\x91");
    EXPECT_EQ(printable(""), "");
    EXPECT_EQ(printable("a\\x1b"), "a\\x1b"); // a backslash stays
}

TEST(Escape, ControlCharactersAreEscaped)
{
    EXPECT_EQ(printable("\x1b[2J"), "\\x1b[2J");
    EXPECT_EQ(printable("\x1b]52;c;ZXZpbA==\x07"), "\\x1b]52;c;ZXZpbA==\\x07");
    EXPECT_EQ(printable("a\nukey: fake"), "a\\x0aukey: fake");
    EXPECT_EQ(printable("\r\t\x7f"), "\\x0d\\x09\\x7f");
    EXPECT_EQ(printable(std::string_view("a\0b", 3)), "a\\x00b");
}

TEST(Escape, C1SeparatorsAndBidiAreEscaped)
{
    EXPECT_EQ(printable("\xc2\x9b" "31m"), "\\u009b31m");
    EXPECT_EQ(printable("\xc2\x80\xc2\x9f\xc2\xa0"), "\\u0080\\u009f\xc2\xa0"); // NBSP is printable
    EXPECT_EQ(printable("\xe2\x80\xae" "txt.exe"), "\\u202etxt.exe");
    EXPECT_EQ(printable("\xe2\x80\xaa\xe2\x81\xa6\xe2\x81\xa9"), "\\u202a\\u2066\\u2069");
    EXPECT_EQ(printable("\xe2\x80\xa8\xe2\x80\xa9"), "\\u2028\\u2029");
}

TEST(Escape, InvalidUtf8IsEscapedBytewise)
{
    EXPECT_EQ(printable("\xff\xfe"), "\\xff\\xfe");
    EXPECT_EQ(printable("\xd6\xd0\xce\xc4"), "\\xd6\\xd0\\xce\\xc4"); // 中文 in GBK
    EXPECT_EQ(printable("\x9b"), "\\x9b");                          // a raw C1 byte
    EXPECT_EQ(printable("\xc0\xaf"), "\\xc0\\xaf");                 // overlong '/'
    EXPECT_EQ(printable("\xed\xa0\x80"), "\\xed\\xa0\\x80");        // a surrogate
    EXPECT_EQ(printable("\xf4\x90\x80\x80"), "\\xf4\\x90\\x80\\x80"); // above U+10FFFF
    EXPECT_EQ(printable("ab\xe4\xb8"), "ab\\xe4\\xb8");             // cut short
    EXPECT_EQ(printable("\xe4" "a"), "\\xe4" "a");                  // resynchronises
}

TEST(Escape, PrintableIsIdempotent)
{
    const std::string hostile = "\x1b]52;c;ZXZpbA==\x07\n ukey: \xc2\x9b\xff\xd6\xd0\xe2\x80\xae\\x41";
    const std::string once = printable(hostile);
    EXPECT_EQ(printable(once), once);
    for (unsigned char c : once)
        EXPECT_TRUE(c >= 0x20 && c != 0x7f) << int(c);
}

TEST(Escape, PrintableJsonEscapesWhatJsonLeavesRaw)
{
    EXPECT_EQ(printable_json(R"({"a":"x)" "\x7f\xc2\x9b\xe2\x80\xae" R"(y"})"),
              R"({"a":"x\u007f\u009b\u202ey"})");
    EXPECT_EQ(printable_json("{\"l\":\"\xe4\xb8\xad\"}"), "{\"l\":\"\xe4\xb8\xad\"}");
    EXPECT_EQ(printable_json("[\"\xff\"]"), "[\"\\ufffd\"]");
}
