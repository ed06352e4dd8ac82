// The core's one hex, base64, file and time helpers (token/bytes.h,
// token/files.h, token/times.h).
#include "token/bytes.h"
#include "token/files.h"
#include "token/times.h"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <unistd.h>

using namespace ukey;

TEST(Bytes, HexBothWays)
{
    const Bytes b{0x00, 0x0f, 0xa5, 0xff};
    EXPECT_EQ(to_hex(b), "000fa5ff");
    EXPECT_EQ(colon_hex(b), "00:0F:A5:FF");
    EXPECT_EQ(from_hex("000fa5ff"), b);
    EXPECT_EQ(from_hex("00:0F:A5:FF"), b); // a pasted fingerprint
    EXPECT_EQ(from_hex("00 0f a5 ff"), b);
    EXPECT_EQ(from_hex(""), Bytes{});
    EXPECT_FALSE(from_hex("abc"));
    EXPECT_FALSE(from_hex("0g"));
    EXPECT_FALSE(from_hex("not-hex"));
    EXPECT_EQ(to_hex({}), "");
    EXPECT_EQ(colon_hex({}), "");
}

TEST(Bytes, Base64BothWays)
{
    // RFC 4648 section 10.
    const char* vectors[][2] = {{"", ""},         {"f", "Zg=="},         {"fo", "Zm8="},        {"foo", "Zm9v"},
                                {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"}};
    for (const auto& [plain, coded] : vectors) {
        EXPECT_EQ(to_base64(as_bytes(plain)), coded);
        auto back = from_base64(coded);
        ASSERT_TRUE(back) << coded;
        EXPECT_EQ(std::string(back->begin(), back->end()), plain);
    }
    Bytes all(256);
    for (int i = 0; i < 256; ++i)
        all[i] = static_cast<unsigned char>(i);
    EXPECT_EQ(from_base64(to_base64(all)), all);
    for (const char* bad : {"Zg=", "Zg", "Z===", "Zm9v!", "=Zm9", "Zg==Zg==", "Zm 9v", "Zm9v\n"})
        EXPECT_FALSE(from_base64(bad)) << bad;
}

TEST(Files, ReadsWholeBoundedAndSaysWhyNot)
{
    const auto dir = std::filesystem::temp_directory_path() / ("ukey-files-" + std::to_string(getpid()));
    std::filesystem::create_directories(dir);
    const auto f = dir / "f";
    std::ofstream(f) << std::string(100000, 'x');
    auto all = read_file(f, 100000);
    ASSERT_TRUE(all);
    EXPECT_EQ(all->size(), 100000u);
    auto big = read_file(f, 99999);
    ASSERT_FALSE(big);
    EXPECT_NE(big.error().message.find("larger than"), std::string::npos);
    auto missing = read_file_if_exists(dir / "none", 10);
    ASSERT_TRUE(missing);
    EXPECT_FALSE(*missing);
    EXPECT_FALSE(read_file(dir / "none", 10));
    auto folder = read_file(dir, 10);
    EXPECT_FALSE(folder);
    int fd = open(f.c_str(), O_RDONLY);
    auto viafd = read_fd(fd, 1u << 20);
    close(fd);
    ASSERT_TRUE(viafd);
    EXPECT_EQ(*viafd, *all);
    std::filesystem::remove_all(dir);
}

TEST(Times, Iso8601AndDaysLeft)
{
    EXPECT_EQ(iso8601(0), "1970-01-01T00:00:00Z");
    EXPECT_EQ(iso8601(1'800'000'000), "2027-01-15T08:00:00Z");
    const std::time_t now = 1'800'000'000;
    EXPECT_EQ(days_until(now + 86400 * 6, now), 6);
    EXPECT_EQ(days_until(now + 1, now), 1); // its last day
    EXPECT_EQ(days_until(now, now), 0);
    EXPECT_EQ(days_until(now - 86399, now), 0);
    EXPECT_EQ(days_until(now - 86400 * 3, now), -3);
}
