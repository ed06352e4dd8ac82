// toml_read::parse never lets toml++ 3.3 see a character its whitespace test
// is undefined for (token/toml_shift.h), and gives every key and string back
// as it was written. Under UBSan (the ASan tree) each of these texts reached
// __builtin_unreachable() before the shift.
#include "token/toml_read.h"
#include "token/utf8.h"

#include <gtest/gtest.h>

namespace {

using ukey::toml_read::parse;

std::string utf8_of(char32_t c)
{
    std::string s;
    ukey::utf8::append(s, c);
    return s;
}

std::string error_of(const std::string& text)
{
    auto r = parse(text, "x.toml");
    return r ? std::string("parsed") : r.error().message;
}

// Valid TOML that reached the undefined answer: a line-ending backslash in a
// """ string makes toml++ skip whitespace, and asks it of the 'é'.
TEST(TomlShift, LineEndingBackslashBeforeNonAsciiInAMultiLineString)
{
    auto r = parse("s = \"\"\"a\\\n  \xc3\xa9\"\"\"\n", "x.toml");
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ("a\xc3\xa9", r->get("s")->value<std::string>().value());
}

// The config fuzzer's third finding (corpus/config/toml-unreachable-after-value):
// toml++ reads `5"` as a value and asks about the 'Җ' after it.
TEST(TomlShift, NonAsciiAfterAValueIsAnErrorNotUndefined)
{
    const std::string text = "x = 5\"\xd2\x96\n";
    EXPECT_NE(std::string("parsed"), error_of(text));
    EXPECT_EQ(0u, error_of(text).find("line 1: ")) << error_of(text);
}

// Every character that is moved comes back, in keys, values, arrays and
// nested tables; the boundaries of each range and their neighbours too.
TEST(TomlShift, EveryMovedCharacterComesBackInKeysAndValues)
{
    for (char32_t c : {0xA0, 0xA1, 0xE9, 0x416, 0x496, 0x499, 0x49A, 0x2C5D, 0x2C5E, 0x3000, 0x3001, 0x3002, 0x3057,
                       0x3058, 0x4E2D, 0xFB25, 0xFB26, 0xFDD0, 0xFEFE, 0xFEFF, 0xFF1D, 0x1F600}) {
        const std::string ch = utf8_of(c);
        const std::string text = "\"k" + ch + "\" = \"v" + ch + "\"\n"
                                 "list = ['" + ch + "', \"\"\"" + ch + "\"\"\"]\n"
                                 "[t" + std::string(".\"") + ch + "\"]\n"
                                 "n = '''" + ch + "'''\n";
        auto r = parse(text, "x.toml");
        ASSERT_TRUE(r) << std::hex << unsigned(c) << ": " << r.error().message;
        EXPECT_EQ("v" + ch, r->get("k" + ch)->value<std::string>().value()) << std::hex << unsigned(c);
        const toml::array* list = r->get("list")->as_array();
        ASSERT_NE(nullptr, list);
        EXPECT_EQ(ch, list->get(0)->value<std::string>().value());
        EXPECT_EQ(ch, list->get(1)->value<std::string>().value());
        const toml::node* n = r->at_path("t")[ch]["n"].node();
        ASSERT_NE(nullptr, n) << std::hex << unsigned(c);
        EXPECT_EQ(ch, n->value<std::string>().value());
        EXPECT_EQ(4u, n->source().begin.line) << "moved nodes keep their source";
        EXPECT_EQ(1u, r->get("k" + ch)->source().begin.line);
    }
}

// Escapes give any character, and are not shifted: they come back as written.
TEST(TomlShift, EscapesOfMovedCharacters)
{
    auto r = parse("s = \"\\u00e9\\u3002\\U0001F600\"\n", "x.toml");
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ("\xc3\xa9\xe3\x80\x82\xf0\x9f\x98\x80", r->get("s")->value<std::string>().value());
}

// Where the moved characters go is taken: the private-use characters there
// are refused, written or escaped, naming the line; others are fine.
TEST(TomlShift, ThePrivateUseCharactersUsedAreRefused)
{
    EXPECT_EQ("line 2: the private-use character U+E000 is not accepted",
              error_of("a = 1\ns = \"" + utf8_of(0xE000) + "\"\n"));
    EXPECT_EQ("line 1: the private-use character U+EBFF is not accepted", error_of("s = '" + utf8_of(0xEBFF) + "'\n"));
    EXPECT_EQ("line 1: the private-use character U+E123 is not accepted", error_of("s = \"\\ue123\"\n"));
    EXPECT_EQ("line 1: the private-use character U+E800 is not accepted", error_of("# \\U0000E800\n"));
    // An escaped backslash and then "ue000" is no escape.
    auto r = parse("s = \"\\\\ue000\"\n", "x.toml");
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ("\\ue000", r->get("s")->value<std::string>().value());
    for (char32_t c : {0xD7FF, 0xDFFF + 1 - 0x1000, 0xEC00, 0xF8FF}) {
        r = parse("s = \"" + utf8_of(c) + "\"\n", "x.toml");
        ASSERT_TRUE(r) << std::hex << unsigned(c) << ": " << r.error().message;
        EXPECT_EQ(utf8_of(c), r->get("s")->value<std::string>().value());
    }
}

// toml++'s own messages quote characters: they are given back as written.
TEST(TomlShift, ErrorMessagesShowTheCharacterAsWritten)
{
    const std::string e = error_of("s = \"\\\xc3\xa9\"\n");
    EXPECT_NE(std::string::npos, e.find("'\\\xc3\xa9'")) << e;
}

} // namespace
