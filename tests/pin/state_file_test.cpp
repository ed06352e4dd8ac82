// ukey's per-Key PIN state file: where it is, how it is created (0600 in
// 0700 folders, whatever the umask), and that every kind of damage or
// tampering fails closed: C_Login answers CKR_PIN_LOCKED without the PIN
// reaching SoftHSM2 (the spy counts), C_GetTokenInfo shows both PINs
// locked, C_UkeyGetPinStatus says UKEY_PIN_STATE_DAMAGED, and stderr has a
// line naming the file. C_InitToken is refused too (CKR_PIN_LOCKED, even
// with the right SO PIN: it checks the SO PIN); removing the file repairs it.
#include "pin_common.h"

#include <linux/capability.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <openssl/evp.h>

#include <cstdio>
#include <random>

using namespace pintest;
using namespace ukeytest;
using namespace std::chrono_literals;

namespace {

constexpr size_t kRecord = 256;

// A Key with a state file: one wrong user PIN recorded (user 5/6).
struct DamagedKey : public ::testing::Test {
    SpyKey k;
    fs::path file;
    CK_SESSION_HANDLE s = 0;

    void SetUp() override
    {
        k.start();
        s = k.open();
        ASSERT_RV(CKR_PIN_INCORRECT, try_login(k.fl(), s, CKU_USER, "wrong"));
        file = pin_file(k.env());
        ASSERT_EQ("user 5/6, so 6/6, flags 0x1", describe(k.status()));
    }

    // The Key must now be locked, for both PINs, with `path` named on stderr.
    void expect_locked(const fs::path& path, const std::string& why = {})
    {
        EXPECT_EQ(flag_names(CKF_USER_PIN_LOCKED | CKF_SO_PIN_LOCKED),
                  flag_names(k.flags() & (CKF_USER_PIN_LOCKED | CKF_SO_PIN_LOCKED)));
        const UKEY_PIN_STATUS st = k.status();
        EXPECT_EQ(0UL, st.userTriesLeft) << describe(st);
        EXPECT_EQ(0UL, st.soTriesLeft) << describe(st);
        EXPECT_TRUE(st.flags & UKEY_PIN_STATE_DAMAGED) << describe(st);
        EXPECT_TRUE(st.flags & UKEY_PIN_COUNTED_BY_UKEY) << describe(st);

        const int before = k.user_logins();
        StderrCapture cap;
        const CK_RV user_rv = try_login(k.fl(), s, CKU_USER, SpyKey::kUser);
        const CK_RV so_rv = try_login(k.fl(), s, CKU_SO, SpyKey::kSo);
        const std::string err = cap.stop();
        EXPECT_RV(CKR_PIN_LOCKED, user_rv);
        EXPECT_RV(CKR_PIN_LOCKED, so_rv);
        EXPECT_EQ(before, k.user_logins()) << "a PIN reached SoftHSM2";
        EXPECT_EQ(0, spy_logins(k.spy_log(), CKU_SO)) << "an SO PIN reached SoftHSM2";
        EXPECT_EQ(CKS_RW_PUBLIC_SESSION, session_state(k.fl(), s));
        EXPECT_NE(std::string::npos, err.find(path.string())) << "stderr does not name " << path << ":\n" << err;
        EXPECT_NE(std::string::npos, err.find("treated as locked")) << err;
        if (!why.empty()) {
            EXPECT_NE(std::string::npos, err.find(why)) << err;
        }
    }

    // C_InitToken is no way out (it would be an unlimited SO PIN oracle);
    // removing the damaged file is, with full counts.
    void expect_init_token_refused_then_removal_repairs()
    {
        ASSERT_RV(CKR_OK, k.fl()->C_CloseAllSessions(k.slot()));
        EXPECT_RV(CKR_PIN_LOCKED, init_token(k.fl(), k.slot(), SpyKey::kSo, "repaired"));
        EXPECT_RV(CKR_PIN_LOCKED, init_token(k.fl(), k.slot(), "wrong-so-pin", "repaired"));
        EXPECT_EQ(0, spy_logins(k.spy_log(), CKU_SO));
        EXPECT_EQ(k.slot(), slot_by_label(k.fl(), "ukey-test")); // not wiped
        fs::remove(file);
        EXPECT_EQ("user 6/6, so 6/6, flags 0x1", describe(k.status()));
        EXPECT_EQ("0", flag_names(pin_flags(k.fl(), k.slot())));
        ASSERT_RV(CKR_OK, init_token(k.fl(), k.slot(), SpyKey::kSo, "repaired"));
        const fs::path now = pin_file(k.env());
        struct stat st {};
        ASSERT_EQ(0, lstat(now.c_str(), &st));
        EXPECT_TRUE(S_ISREG(st.st_mode));
        EXPECT_EQ(0600U, st.st_mode & 07777);
    }

    // Offset of the checksum's first hex digit in the record at `at`.
    size_t sum_at(const std::string& text, size_t at)
    {
        const size_t p = text.find(" sum=", at);
        if (p == std::string::npos || p >= at + kRecord)
            throw std::runtime_error("no checksum in the record at " + std::to_string(at));
        return p + 5;
    }
};

char flip_hex(char c)
{
    return c == '0' ? '1' : '0';
}

TEST_F(DamagedKey, TheFileIsWhereAndHowTheDocsSay)
{
    const auto& tok = k.env().token("ukey-test");
    // softhsm-<serial>-<12 hex digits>.pin
    const std::string name = file.filename().string(), prefix = "softhsm-" + tok.serial + "-";
    ASSERT_FALSE(tok.serial.empty());
    EXPECT_EQ(prefix.size() + 12 + 4, name.size()) << name;
    EXPECT_EQ(0U, name.rfind(prefix, 0)) << name;
    EXPECT_EQ(std::string::npos, name.substr(prefix.size(), 12).find_first_not_of("0123456789abcdef")) << name;
    EXPECT_EQ(".pin", file.extension().string());
    EXPECT_EQ(pin_dir(k.env()), file.parent_path());
    EXPECT_EQ(512U, fs::file_size(file));
    const std::string text = read_file(file);
    EXPECT_EQ(0U, text.find("ukey-pin 2 seq=1 user=5/6 so=6/6 change=0 policy=0 key=")) << text.substr(0, 120);
    EXPECT_EQ(std::string(kRecord, '\0'), text.substr(kRecord)); // the second record is still blank
    EXPECT_RV(CKR_PIN_INCORRECT, try_login(k.fl(), s, CKU_USER, "wrong"));
    const std::string text2 = read_file(file);
    EXPECT_EQ(kRecord, text2.find("ukey-pin 2 seq=2 user=4/6 so=6/6 change=0 policy=0 key="));
    EXPECT_EQ(text.substr(0, kRecord), text2.substr(0, kRecord)); // the older record is kept
}

TEST(StateFile, CreatedPrivateWhateverTheUmask)
{
    SpyKey k;
    fs::remove_all(k.env().state_dir()); // ukey creates the whole path
    k.start();
    CK_SESSION_HANDLE s = k.open();
    const mode_t old = umask(0);
    const CK_RV rv = try_login(k.fl(), s, CKU_USER, "wrong");
    umask(old);
    ASSERT_RV(CKR_PIN_INCORRECT, rv);
    struct stat st {};
    ASSERT_EQ(0, lstat(k.env().state_dir().c_str(), &st));
    EXPECT_EQ(0700U, st.st_mode & 07777) << "state_dir";
    ASSERT_EQ(0, lstat(pin_dir(k.env()).c_str(), &st));
    EXPECT_EQ(0700U, st.st_mode & 07777) << "state_dir/pin";
    EXPECT_EQ(geteuid(), st.st_uid);
    const fs::path file = pin_file(k.env());
    ASSERT_EQ(0, lstat(file.c_str(), &st));
    EXPECT_TRUE(S_ISREG(st.st_mode));
    EXPECT_EQ(0600U, st.st_mode & 07777) << file;
    EXPECT_EQ(geteuid(), st.st_uid);
    EXPECT_EQ(1U, pin_dir_entries(k.env()).size());
}

TEST_F(DamagedKey, ChecksumByteFlipped)
{
    std::string text = read_file(file);
    const size_t p = sum_at(text, 0);
    text[p] = flip_hex(text[p]);
    overwrite_file(file, text);
    expect_locked(file, "corrupt");
    expect_init_token_refused_then_removal_repairs();
}

TEST_F(DamagedKey, ChecksumsOfBothRecordsFlipped)
{
    ASSERT_RV(CKR_PIN_INCORRECT, try_login(k.fl(), s, CKU_USER, "wrong")); // now two records
    std::string text = read_file(file);
    for (size_t at : {size_t(0), kRecord}) {
        const size_t p = sum_at(text, at) + 7;
        text[p] = flip_hex(text[p]);
    }
    overwrite_file(file, text);
    expect_locked(file, "corrupt");
}

TEST_F(DamagedKey, CountEditedWithoutFixingTheChecksum)
{
    std::string text = read_file(file);
    const size_t p = text.find("user=5/6");
    ASSERT_NE(std::string::npos, p);
    text[p + 5] = '6'; // "user=6/6": one try back, if it were believed
    overwrite_file(file, text);
    expect_locked(file, "corrupt");
}

TEST_F(DamagedKey, Garbage)
{
    std::mt19937 rng(42);
    std::string junk(512, 'x');
    for (char& c : junk)
        c = static_cast<char>(1 + rng() % 255);
    overwrite_file(file, junk);
    expect_locked(file, "corrupt");
    expect_init_token_refused_then_removal_repairs();
}

// Only a missing file is fresh: an existing one that is empty or all zeros
// is damage, never the full count back.
TEST_F(DamagedKey, TruncatedToNothing)
{
    fs::resize_file(file, 0);
    expect_locked(file, "is empty");
    expect_init_token_refused_then_removal_repairs();
}

TEST_F(DamagedKey, FilledWithZeros)
{
    overwrite_file(file, std::string(2 * kRecord, '\0'));
    expect_locked(file, "blank");
}

// A record from before policy objects (format 1) still reads.
TEST_F(DamagedKey, Version1RecordStillReads)
{
    const std::string text = read_file(file);
    const size_t key_at = text.find(" key=");
    ASSERT_NE(std::string::npos, key_at);
    const std::string key = text.substr(key_at + 5, 16);
    const std::string body = "ukey-pin 1 seq=7 user=3/6 so=6/6 change=0 key=" + key;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned n = 0;
    EVP_Digest(body.data(), body.size(), md, &n, EVP_sha256(), nullptr);
    std::string sum;
    for (unsigned i = 0; i < 8; ++i) {
        char b[3];
        std::snprintf(b, sizeof b, "%02x", md[i]);
        sum += b;
    }
    std::string record = body + " sum=" + sum;
    record.resize(kRecord - 1, ' ');
    record += '\n';
    overwrite_file(file, record + std::string(kRecord, '\0'));
    EXPECT_EQ("user 3/6, so 6/6, flags 0x1", describe(k.status()));
    EXPECT_RV(CKR_PIN_INCORRECT, try_login(k.fl(), s, CKU_USER, "wrong"));
    EXPECT_EQ("user 2/6, so 6/6, flags 0x1", describe(k.status()));
    EXPECT_EQ(kRecord, read_file(file).find("ukey-pin 2 seq=8 user=2/6 so=6/6 change=0 policy=0 key=" + key));
}

TEST_F(DamagedKey, Truncated)
{
    fs::resize_file(file, 100);
    expect_locked(file);
}

// docs/pin-policy.md: "a file that is ... of the wrong size ... makes the
// Key locked".
TEST_F(DamagedKey, WrongSizeLonger)
{
    std::string text = read_file(file);
    overwrite_file(file, text + "x");
    expect_locked(file);
}

TEST_F(DamagedKey, WrongSizeOnlyTheFirstRecord)
{
    fs::resize_file(file, kRecord);
    expect_locked(file);
}

TEST_F(DamagedKey, FileOpenToOthers)
{
    fs::permissions(file, fs::perms(0644));
    expect_locked(file, "chmod 600");
    // The fix the log line gives works.
    fs::permissions(file, fs::perms(0600));
    EXPECT_EQ("user 5/6, so 6/6, flags 0x1", describe(k.status()));
    EXPECT_RV(CKR_OK, try_login(k.fl(), s, CKU_USER, SpyKey::kUser));
}

TEST_F(DamagedKey, PinFolderOpenToOthers)
{
    fs::permissions(pin_dir(k.env()), fs::perms(0755));
    expect_locked(pin_dir(k.env()), "chmod 700");
}

TEST_F(DamagedKey, StateDirOpenToOthers)
{
    fs::permissions(k.env().state_dir(), fs::perms(0750));
    expect_locked(k.env().state_dir(), "chmod 700");
}

TEST_F(DamagedKey, FileReplacedBySymlink)
{
    const fs::path real = k.env().dir() / "elsewhere.pin";
    fs::copy_file(file, real); // a perfectly valid record, 0600, ours
    fs::remove(file);
    fs::create_symlink(real, file);
    expect_locked(file, "symbolic link");
    // ukey never wrote through the link.
    EXPECT_EQ(read_file(real).substr(0, 40), std::string("ukey-pin 2 seq=1 user=5/6 so=6/6 change=").substr(0, 40));
}

TEST_F(DamagedKey, PinFolderReplacedBySymlink)
{
    const fs::path real = k.env().dir() / "pin.real";
    fs::rename(pin_dir(k.env()), real);
    fs::create_symlink(real, pin_dir(k.env()));
    expect_locked(pin_dir(k.env()));
}

TEST_F(DamagedKey, FileOwnedByAnotherUser)
{
    if (geteuid() != 0)
        GTEST_SKIP() << "needs root to chown the file to another user";
    ASSERT_EQ(0, chown(file.c_str(), 65534, 65534));
    expect_locked(file, "owned by another user");
    // The fix the log line gives works.
    ASSERT_EQ(0, chown(file.c_str(), geteuid(), getegid()));
    EXPECT_EQ("user 5/6, so 6/6, flags 0x1", describe(k.status()));
}

TEST_F(DamagedKey, PinFolderOwnedByAnotherUser)
{
    if (geteuid() != 0)
        GTEST_SKIP() << "needs root to chown the folder to another user";
    ASSERT_EQ(0, chown(pin_dir(k.env()).c_str(), 65534, 65534));
    expect_locked(pin_dir(k.env()), "owned by another user");
}

TEST_F(DamagedKey, RecordOfAnotherKey)
{
    // A second Key: its file, copied over the first Key's, must not count.
    k.stop();
    TokenSpec t;
    t.label = "second";
    t.so_pin = SpyKey::kSo;
    t.user_pin = SpyKey::kUser;
    k.env().add_token(0, t);
    k.start();
    s = k.open();
    const CK_SLOT_ID second = slot_by_label(k.fl(), "second");
    CK_SESSION_HANDLE s2 = open_session(k.fl(), second, true);
    ASSERT_RV(CKR_PIN_INCORRECT, try_login(k.fl(), s2, CKU_USER, "wrong"));
    fs::path other;
    for (const auto& p : pin_dir_entries(k.env()))
        if (p != file)
            other = p;
    ASSERT_FALSE(other.empty());
    fs::copy_file(other, file, fs::copy_options::overwrite_existing);
    expect_locked(file, "another Key");
    EXPECT_EQ("user 5/6, so 6/6, flags 0x1", describe(pin_status(k.v(), second))); // untouched
}

// A folder where the file should be: nothing can be read or written there.
TEST_F(DamagedKey, FolderInPlaceOfTheFile)
{
    fs::remove(file);
    fs::create_directory(file, pin_dir(k.env()));
    fs::permissions(file, fs::perms(0700));
    expect_locked(file);
}

// Drops CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH from this (child) process,
// so that even root is bound by file modes.
bool drop_dac_override()
{
    __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct data[2]{};
    if (syscall(SYS_capget, &hdr, data) != 0)
        return false;
    for (int cap : {CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH})
        data[cap / 32].effective &= ~(1U << (cap % 32));
    return syscall(SYS_capset, &hdr, data) == 0;
}

// An unreadable file (mode 0200: private, but no read permission).
TEST_F(DamagedKey, UnreadableFile)
{
    k.stop();
    fs::permissions(file, fs::perms(0200));
    Child c([&]() -> std::string {
        if (!drop_dac_override())
            return "cannot drop CAP_DAC_OVERRIDE";
        check(k.module().initialize(), "C_Initialize in child");
        const CK_SLOT_ID slot = slot_by_label(k.fl(), "ukey-test");
        const CK_SESSION_HANDLE cs = open_session(k.fl(), slot, true);
        StderrCapture cap;
        const CK_RV rv = try_login(k.fl(), cs, CKU_USER, SpyKey::kUser);
        const std::string err = cap.stop();
        const UKEY_PIN_STATUS st = pin_status(k.v(), slot);
        return "login " + rv_name(rv) + " | flags " +
               flag_names(pin_flags(k.fl(), slot) & (CKF_USER_PIN_LOCKED | CKF_SO_PIN_LOCKED)) + " | " +
               describe(st) + " | names file: " + (err.find(file.string()) != std::string::npos ? "yes" : "no") +
               "\n" + err;
    });
    const std::string out = c.wait(30s);
    ASSERT_TRUE(c.exited_ok()) << c.status() << ": " << out;
    ASSERT_NE("cannot drop CAP_DAC_OVERRIDE", out);
    const std::string first = out.substr(0, out.find('\n'));
    EXPECT_EQ("login CKR_PIN_LOCKED (0xA4) | flags CKF_USER_PIN_LOCKED|CKF_SO_PIN_LOCKED | user 0/0, so 0/0, "
              "flags 0x5 | names file: yes",
              first)
        << out;
    EXPECT_EQ(1, k.user_logins()) << "the PIN reached SoftHSM2";
}

} // namespace
