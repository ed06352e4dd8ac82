// The audit log: records, the chain across processes and rotated files, and
// what verify() names when the files are tampered with (docs/audit.md).
#include "token/audit_file.h"
#include "token/audit_log.h"

#include "ukeytest/files.h"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include <cstdio>
#include <fstream>
#include <functional>
#include <cctype>
#include <sstream>

#include <fcntl.h>
#include <poll.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace ukey;

namespace {

class Audit : public ::testing::Test {
protected:
    void SetUp() override
    {
        s_.dir = root_ / "state" / "audit";
    }

    std::unique_ptr<AuditLog> log()
    {
        auto l = AuditLog::open(s_);
        EXPECT_TRUE(l) << l.error().message;
        return l ? std::move(*l) : nullptr;
    }
    void append(int n, AuditKind kind = AuditKind::login)
    {
        auto l = log();
        ASSERT_TRUE(l);
        for (int i = 0; i < n; ++i) {
            auto ok = l->append({kind, "softhsm, Alice, serial " + std::to_string(i), "user", CKR_OK, ""});
            ASSERT_TRUE(ok) << ok.error().message;
        }
    }
    // `children` processes append `each` records each, all at once.
    void append_in_children(int children, int each)
    {
        std::vector<pid_t> pids;
        for (int c = 0; c < children; ++c) {
            const pid_t pid = fork();
            ASSERT_GE(pid, 0);
            if (pid == 0) {
                auto l = AuditLog::open(s_);
                int bad = l && *l ? 0 : 1;
                for (int i = 0; i < each && !bad; ++i)
                    bad = (*l)->append({AuditKind::login, "child " + std::to_string(c), "user", CKR_OK, ""}) ? 0 : 1;
                _exit(bad);
            }
            pids.push_back(pid);
        }
        for (pid_t pid : pids) {
            int status = 0;
            ASSERT_EQ(waitpid(pid, &status, 0), pid);
            EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        }
    }
    std::filesystem::path file(const char* name = audit_file::log_name) const { return s_.dir / name; }
    static std::vector<std::string> lines(const std::filesystem::path& p)
    {
        std::ifstream in(p);
        std::vector<std::string> out;
        for (std::string l; std::getline(in, l);)
            out.push_back(l);
        return out;
    }
    static void write(const std::filesystem::path& p, const std::vector<std::string>& ls, bool last_newline = true)
    {
        std::ofstream out(p, std::ios::trunc);
        for (std::size_t i = 0; i < ls.size(); ++i)
            out << ls[i] << (i + 1 < ls.size() || last_newline ? "\n" : "");
    }
    VerifyReport verified()
    {
        auto r = verify(s_);
        EXPECT_TRUE(r) << r.error().message;
        return r ? *r : VerifyReport{};
    }
    // verify() fails naming this seq, file and line.
    void expect_bad(std::uint64_t seq, const std::filesystem::path& f, std::size_t line, const std::string& word)
    {
        const auto r = verified();
        EXPECT_FALSE(r.ok);
        EXPECT_EQ(r.first_bad_seq, seq) << r.why;
        EXPECT_EQ(r.file, f.string()) << r.why;
        EXPECT_EQ(r.line, line) << r.why;
        EXPECT_NE(r.why.find(word), std::string::npos) << r.why;
    }
    static AuditRecord record_of(const std::string& line)
    {
        auto p = audit_file::parse_line(line);
        EXPECT_TRUE(p.record && !p.hash_mismatch) << line;
        return p.record ? *p.record : AuditRecord{};
    }

    ukeytest::TempDir tmp_{"/tmp", "ukey-audit-test."};
    const std::filesystem::path root_ = tmp_.path();
    AuditSettings s_;
};

mode_t mode_of(const std::filesystem::path& p)
{
    struct stat st {};
    lstat(p.c_str(), &st);
    return st.st_mode & 0777;
}

} // namespace

TEST(AuditKinds, NamesAreStableAndRoundTrip)
{
    const std::vector<std::string> want{"login",    "login-failed",  "pin-locked",     "pin-unlocked",
                                        "set-pin",  "init-pin",      "init-token",     "key-generated",
                                        "object-created", "object-destroyed"};
    ASSERT_EQ(audit_kinds().size(), want.size());
    for (std::size_t i = 0; i < want.size(); ++i) {
        EXPECT_EQ(audit_kind_name(audit_kinds()[i]), want[i]);
        EXPECT_EQ(audit_kind_from(want[i]), audit_kinds()[i]);
    }
    EXPECT_FALSE(audit_kind_from("logout"));
}

TEST_F(Audit, DisabledGivesNoLog)
{
    s_.enabled = false;
    auto l = AuditLog::open(s_);
    ASSERT_TRUE(l);
    EXPECT_EQ(*l, nullptr);
}

TEST_F(Audit, AppendThenReadBack)
{
    auto l = log();
    ASSERT_TRUE(l);
    ASSERT_TRUE(l->append({AuditKind::login_failed, "softhsm, Alice, 1234", "user", CKR_PIN_INCORRECT, ""}));
    ASSERT_TRUE(l->append({AuditKind::object_created, "softhsm, Alice, 1234", "", CKR_OK, "certificate \"mail\""}));
    auto r = read_records(s_);
    ASSERT_TRUE(r) << r.error().message;
    ASSERT_EQ(r->records.size(), 2u);
    EXPECT_EQ(r->unreadable, 0u);
    const auto& a = r->records[0];
    const auto& b = r->records[1];
    EXPECT_EQ(a.seq, 1u);
    EXPECT_EQ(b.seq, 2u);
    EXPECT_EQ(a.kind, "login-failed");
    EXPECT_EQ(a.key, "softhsm, Alice, 1234");
    EXPECT_EQ(a.user_type, "user");
    EXPECT_EQ(a.rv, CKR_PIN_INCORRECT);
    EXPECT_EQ(b.detail, "certificate \"mail\"");
    EXPECT_EQ(a.pid, getpid());
    EXPECT_EQ(a.uid, static_cast<long long>(geteuid()));
    EXPECT_NE(a.exe.find("ukey-unit-tests"), std::string::npos) << a.exe;
    // 2026-12-06T22:58:42.123Z (no std::regex: GCC 12 warns inside it under ASan)
    const std::string shape = "dddd-dd-ddTdd:dd:dd.dddZ";
    ASSERT_EQ(a.time.size(), shape.size()) << a.time;
    for (std::size_t i = 0; i < shape.size(); ++i)
        EXPECT_TRUE(shape[i] == 'd' ? std::isdigit(static_cast<unsigned char>(a.time[i])) != 0 : a.time[i] == shape[i])
            << a.time;
    EXPECT_EQ(a.prev, audit_file::genesis);
    EXPECT_EQ(b.prev, a.hash);
    EXPECT_EQ(a.line, 1u);
    EXPECT_EQ(b.file, file().string());
    // Filters.
    auto only = read_records(s_, {std::string("object-created"), std::nullopt, std::nullopt});
    ASSERT_TRUE(only);
    ASSERT_EQ(only->records.size(), 1u);
    EXPECT_EQ(only->records[0].seq, 2u);
    EXPECT_EQ(read_records(s_, {std::nullopt, std::string("Bob"), std::nullopt})->records.size(), 0u);
    EXPECT_EQ(read_records(s_, {std::nullopt, std::string("Alice"), std::nullopt})->records.size(), 2u);
    EXPECT_EQ(read_records(s_, {std::nullopt, std::nullopt, std::string("2999-01-01")})->records.size(), 0u);
    EXPECT_EQ(read_records(s_, {std::nullopt, std::nullopt, std::string("2000-01-01")})->records.size(), 2u);

    const auto v = verified();
    EXPECT_TRUE(v.ok) << v.why;
    EXPECT_EQ(v.records, 2u);
    EXPECT_EQ(v.last_seq, 2u);
    // Private: 0700 folder, 0600 files.
    EXPECT_EQ(mode_of(s_.dir), 0700u);
    EXPECT_EQ(mode_of(file()), 0600u);
    EXPECT_EQ(mode_of(file(audit_file::head_name)), 0600u);
    EXPECT_EQ(mode_of(file(audit_file::lock_name)), 0600u);
}

TEST_F(Audit, HostileStringsAreBoundedAndEscapedInTheFile)
{
    auto l = log();
    ASSERT_TRUE(l);
    const std::string hostile = "Alice\x1b]0;owned\x07\x1b[2J\xff\xfe\n\r\xc2\x9b";
    ASSERT_TRUE(l->append({AuditKind::login, hostile + std::string(5000, 'x'), hostile, CKR_OK, hostile}));
    std::ifstream in(file(), std::ios::binary);
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    for (char c : text.substr(0, text.size() - 1))
        EXPECT_TRUE(static_cast<unsigned char>(c) >= 0x20 && c != 0x7f) << "byte " << int(c) << " in " << text;
    EXPECT_EQ(text.find("\xc2\x9b"), std::string::npos);
    auto r = read_records(s_);
    ASSERT_TRUE(r);
    ASSERT_EQ(r->records.size(), 1u);
    EXPECT_EQ(r->records[0].key.rfind("Alice\\x1b]0;owned\\x07\\x1b[2J\\xff\\xfe\\x0a\\x0d\\u009b", 0), 0u)
        << r->records[0].key;
    // 256 bytes of the Key's text at most, before escaping.
    EXPECT_LT(r->records[0].key.size(), audit_field_max + 64);
    EXPECT_TRUE(verified().ok);
}

TEST_F(Audit, AFolderOfAnotherUserOrOpenToOthersIsRefused)
{
    ASSERT_TRUE(std::filesystem::create_directories(s_.dir));
    chmod(s_.dir.c_str(), 0755);
    auto l = AuditLog::open(s_);
    ASSERT_FALSE(l);
    EXPECT_NE(l.error().message.find("open to other users"), std::string::npos) << l.error().message;
    EXPECT_FALSE(verify(s_));
    chmod(s_.dir.c_str(), 0700);
    append(1);
    chmod(file().c_str(), 0644);
    auto again = log();
    ASSERT_TRUE(again);
    auto e = again->append({AuditKind::login, "k", "user", CKR_OK, ""});
    ASSERT_FALSE(e);
    EXPECT_NE(e.error().message.find("open to other users"), std::string::npos) << e.error().message;
    chmod(file().c_str(), 0600);
    if (geteuid() == 0) {
        ASSERT_EQ(chown(s_.dir.c_str(), 65534, 65534), 0);
        auto other = AuditLog::open(s_);
        ASSERT_FALSE(other);
        EXPECT_NE(other.error().message.find("owned by another user"), std::string::npos);
    }
}

TEST_F(Audit, ManyProcessesAppendOneContiguousChain)
{
    constexpr int children = 8, each = 40;
    append_in_children(children, each);
    const auto v = verified();
    EXPECT_TRUE(v.ok) << v.why;
    auto r = read_records(s_);
    ASSERT_TRUE(r);
    ASSERT_EQ(r->records.size(), std::size_t(children * each));
    for (std::size_t i = 0; i < r->records.size(); ++i)
        ASSERT_EQ(r->records[i].seq, i + 1);
}

// A holder that makes no progress (a process stopped while appending) is
// given up on after 3 s: the append fails, naming the lock. (Many appenders
// that keep the lock busy make progress: ManyProcessesAppendOneContiguousChain.)
TEST_F(Audit, AHolderThatMakesNoProgressIsGivenUpOn)
{
    append(1);
    const int fd = open(file(audit_file::lock_name).c_str(), O_RDWR | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(flock(fd, LOCK_EX), 0);
    auto l = log();
    ASSERT_TRUE(l);
    const auto t0 = std::chrono::steady_clock::now();
    auto e = l->append({AuditKind::login, "k", "user", CKR_OK, ""});
    const auto waited = std::chrono::steady_clock::now() - t0;
    close(fd);
    ASSERT_FALSE(e);
    EXPECT_NE(e.error().message.find("too long"), std::string::npos) << e.error().message;
    EXPECT_GE(waited, std::chrono::milliseconds(2900)) << "gave up before 3 s without progress";
}

TEST_F(Audit, ManyProcessesAppendAcrossRotations)
{
    s_.max_bytes = audit_min_bytes;
    s_.keep = audit_max_keep;
    constexpr int children = 4, each = 30;
    append_in_children(children, each);
    const auto v = verified();
    EXPECT_TRUE(v.ok) << v.why;
    EXPECT_GT(v.files.size(), 3u);
    EXPECT_EQ(v.records, std::size_t(children * each));
    EXPECT_EQ(v.first_seq, 1u);
}

TEST_F(Audit, VerifyWhileOthersAppendAndRotateSeesAConsistentLog)
{
    s_.max_bytes = audit_min_bytes;
    s_.keep = 3;
    append(1);
    // Verifies must fall amid the appends however the two processes are
    // scheduled (a busy machine could otherwise run all 300 appends before
    // the first verify, or between two): after every 30 appends the writer
    // waits until one more verify is over than before. So at least 9 fall
    // amid the writing, at different points of the rotations.
    constexpr int appends = 300, chunk = 30;
    int verified_sock[2]; // a byte per verify over; send() with MSG_NOSIGNAL: no SIGPIPE
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, verified_sock), 0);
    const pid_t writer = fork();
    ASSERT_GE(writer, 0);
    if (writer == 0) {
        close(verified_sock[1]);
        auto l = AuditLog::open(s_);
        int bad = l && *l ? 0 : 1;
        for (int i = 0; i < appends && !bad; ++i) {
            if (i > 0 && i % chunk == 0) {
                // Bounded: a parent that died must not leave us here.
                pollfd p{verified_sock[0], POLLIN, 0};
                char c;
                if (poll(&p, 1, 60000) != 1 || read(verified_sock[0], &c, 1) != 1)
                    _exit(2);
            }
            bad = (*l)->append({AuditKind::login, "writer", "user", CKR_OK, ""}) ? 0 : 1;
        }
        _exit(bad);
    }
    close(verified_sock[0]);
    int checks = 0, status = 0;
    while (waitpid(writer, &status, WNOHANG) == 0) {
        const auto v = verified();
        ASSERT_TRUE(v.ok) << "check " << checks << ": " << v.why;
        ++checks;
        [[maybe_unused]] ssize_t n = send(verified_sock[1], "v", 1, MSG_NOSIGNAL);
        // Room for the writer: flock favours no one, and a verify that
        // starts again at once (slower under ASan) could hold the shared
        // lock nearly all the time, until the writer's append gives up
        // after 3 s (docs/audit.md). A person runs verify now and then; a
        // 100 ms gap leaves the writer, polling the lock every 20 ms at
        // most, several chances even when the machine is busy.
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    close(verified_sock[1]);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "writer status " << status;
    EXPECT_GE(checks, appends / chunk - 1);
    std::printf("%d verifies while the writer appended\n", checks);
    const auto v = verified();
    EXPECT_TRUE(v.ok) << v.why;
    EXPECT_EQ(v.last_seq, 301u);
}

TEST_F(Audit, RotationKeepsTheChainAcrossFiles)
{
    s_.max_bytes = audit_min_bytes;
    s_.keep = 2;
    append(60);
    for (const auto& f : std::filesystem::directory_iterator(s_.dir)) {
        if (f.path().filename().string().rfind("audit.log", 0) == 0) {
            EXPECT_LE(std::filesystem::file_size(f.path()), s_.max_bytes) << f.path();
        }
    }
    EXPECT_TRUE(std::filesystem::exists(audit_file::rotated(s_.dir, 2)));
    EXPECT_FALSE(std::filesystem::exists(audit_file::rotated(s_.dir, 3)));
    auto v = verified();
    ASSERT_TRUE(v.ok) << v.why;
    ASSERT_EQ(v.files.size(), 3u);
    EXPECT_EQ(v.files.front(), audit_file::rotated(s_.dir, 2).string());
    EXPECT_GT(*v.first_seq, 1u);
    EXPECT_EQ(v.last_seq, 60u);
    ASSERT_EQ(v.notes.size(), 1u);
    EXPECT_NE(v.notes[0].find("rotated away"), std::string::npos) << v.notes[0];
    // The new file's first record chains to the last of the one before.
    const auto newest = lines(file()), older = lines(audit_file::rotated(s_.dir, 1));
    EXPECT_EQ(record_of(newest.front()).prev, record_of(older.back()).hash);
    // Tampering with a rotated file is named in that file.
    auto l1 = older;
    l1.erase(l1.begin() + 2);
    write(audit_file::rotated(s_.dir, 1), l1);
    expect_bad(record_of(older[2]).seq, audit_file::rotated(s_.dir, 1), 3, "missing");
    write(audit_file::rotated(s_.dir, 1), older);
    // The oldest kept records removed: not taken for rotation.
    const auto oldest = lines(audit_file::rotated(s_.dir, 2));
    write(audit_file::rotated(s_.dir, 2), {oldest.begin() + 1, oldest.end()});
    expect_bad(*v.first_seq, audit_file::rotated(s_.dir, 2), 1, "removed from the start");
    write(audit_file::rotated(s_.dir, 2), oldest);
    // A rotated file missing between others.
    std::filesystem::rename(audit_file::rotated(s_.dir, 1), root_ / "away");
    const auto gap = verified();
    EXPECT_FALSE(gap.ok);
    EXPECT_EQ(gap.file, audit_file::rotated(s_.dir, 1).string());
    // Lowering keep drops the files past it at the next rotation.
    std::filesystem::rename(root_ / "away", audit_file::rotated(s_.dir, 1));
    s_.keep = 0;
    append(20);
    EXPECT_FALSE(std::filesystem::exists(audit_file::rotated(s_.dir, 1)));
    v = verified();
    EXPECT_TRUE(v.ok) << v.why;
    EXPECT_EQ(v.last_seq, 80u);
}

// Ten records in audit.log; each test changes them one way.
class Tamper : public Audit {
protected:
    void SetUp() override
    {
        Audit::SetUp();
        append(10);
        orig_ = lines(file());
        ASSERT_EQ(orig_.size(), 10u);
        ASSERT_TRUE(verified().ok);
    }
    // The lines with line i's record changed by `edit` and hashed anew (as
    // someone who knows the format would).
    std::vector<std::string> rehashed(std::size_t i, const std::function<void(AuditRecord&)>& edit)
    {
        AuditRecord r = record_of(orig_[i]);
        edit(r);
        auto ls = orig_;
        ls[i] = audit_file::make_line(r);
        ls[i].pop_back();
        return ls;
    }
    std::vector<std::string> orig_;
};

TEST_F(Tamper, EditedFieldIsNamed)
{
    auto ls = orig_;
    const auto at = ls[3].find("Alice");
    ls[3].replace(at, 5, "Mallory");
    write(file(), ls);
    expect_bad(4, file(), 4, "edited");
}

TEST_F(Tamper, EditedSeqIsNamed)
{
    auto ls = orig_;
    ls[6].replace(ls[6].find("\"seq\":7"), 7, "\"seq\":8");
    write(file(), ls);
    expect_bad(8, file(), 7, "edited");
}

TEST_F(Tamper, DeletedRecordIsNamed)
{
    auto ls = orig_;
    ls.erase(ls.begin() + 4);
    write(file(), ls);
    expect_bad(5, file(), 5, "missing");
    // Two at once: the first of them.
    ls.erase(ls.begin() + 1);
    write(file(), ls);
    expect_bad(2, file(), 2, "missing");
}

TEST_F(Tamper, RecordsRemovedFromTheStartAreNamed)
{
    auto ls = orig_;
    ls.erase(ls.begin(), ls.begin() + 2);
    write(file(), ls);
    expect_bad(1, file(), 1, "removed from the start");
    EXPECT_TRUE(verified().notes.empty()); // not "rotated away"
}

TEST_F(Tamper, CopiedRecordIsNamed)
{
    auto ls = orig_;
    ls.insert(ls.begin() + 3, ls[2]);
    write(file(), ls);
    expect_bad(3, file(), 4, "inserted");
}

TEST_F(Tamper, ForgedRecordWithAValidHashIsNamed)
{
    // A record made as the writer makes it, chained to record 3, put before
    // the real record 4.
    AuditRecord forged = record_of(orig_[3]);
    forged.detail = "forged";
    forged.prev = record_of(orig_[2]).hash;
    auto ls = orig_;
    std::string line = audit_file::make_line(forged);
    line.pop_back();
    ls.insert(ls.begin() + 3, line);
    write(file(), ls);
    expect_bad(4, file(), 4, "inserted");
    // Badly forged (any seq, any prev): still that line.
    forged.seq = 77;
    forged.prev = audit_file::genesis;
    line = audit_file::make_line(forged);
    line.pop_back();
    ls[3] = line;
    write(file(), ls);
    expect_bad(77, file(), 4, "inserted");
}

TEST_F(Tamper, SwappedRecordsAreNamed)
{
    auto ls = orig_;
    std::swap(ls[5], ls[6]);
    write(file(), ls);
    expect_bad(7, file(), 6, "reordered");
    ls = orig_;
    std::swap(ls[0], ls[1]);
    write(file(), ls);
    expect_bad(2, file(), 1, "reordered");
    ls = orig_;
    std::swap(ls[8], ls[9]);
    write(file(), ls);
    expect_bad(10, file(), 9, "reordered");
}

TEST_F(Tamper, RewrittenRecordIsNamed)
{
    // Edited and its hash recomputed, but the next record still chains to
    // the original.
    write(file(), rehashed(4, [](AuditRecord& r) { r.kind = "login-failed"; }));
    expect_bad(5, file(), 5, "rewritten");
}

TEST_F(Tamper, RecordsCutOffTheEndAreNamed)
{
    auto ls = orig_;
    ls.resize(8);
    write(file(), ls);
    expect_bad(9, file(), 9, "cut off");
    // Even everything.
    write(file(), {});
    expect_bad(1, file(), 1, "cut off");
    // The next record keeps the gap visible: it does not chain to what is left.
    ls = orig_;
    ls.resize(8);
    write(file(), ls);
    append(1);
    expect_bad(9, file(), 9, "missing");
}

TEST_F(Tamper, RecordCutMidLineIsNamed)
{
    auto ls = orig_;
    ls[9].resize(ls[9].size() / 2);
    write(file(), ls, false);
    expect_bad(10, file(), 10, "cut short");
    // A later append ends the cut line rather than gluing onto it.
    append(1);
    expect_bad(10, file(), 10, "");
    EXPECT_EQ(lines(file()).size(), 11u);
}

TEST_F(Tamper, ReplacedLastRecordIsNamed)
{
    write(file(), rehashed(9, [](AuditRecord& r) { r.rv = CKR_PIN_INCORRECT; }));
    expect_bad(10, file(), 10, "replaced");
}

TEST_F(Tamper, MissingHeadIsAFailure)
{
    std::filesystem::remove(file(audit_file::head_name));
    const auto v = verified();
    EXPECT_FALSE(v.ok);
    EXPECT_FALSE(v.first_bad_seq);
    EXPECT_EQ(v.file, file(audit_file::head_name).string());
}

TEST_F(Tamper, UnfinishedLineFromACrashIsTakenAsSuch)
{
    // A crash in the middle of writing record 11: part of its line, and the
    // head still at 10.
    AuditRecord r = record_of(orig_[9]);
    r.seq = 11;
    r.prev = r.hash;
    std::string line = audit_file::make_line(r);
    auto ls = orig_;
    ls.push_back(line.substr(0, 40));
    write(file(), ls, false);
    auto v = verified();
    EXPECT_TRUE(v.ok) << v.why;
    ASSERT_EQ(v.notes.size(), 1u);
    EXPECT_NE(v.notes[0].find("crash"), std::string::npos);
    // The next append replaces it.
    append(1);
    v = verified();
    EXPECT_TRUE(v.ok) << v.why;
    EXPECT_EQ(v.last_seq, 11u);
    EXPECT_EQ(lines(file()).size(), 11u);
}

TEST_F(Tamper, HeadBehindAfterACrashIsAccepted)
{
    // A crash after the record, before the head: the head says 9.
    std::ofstream(file(audit_file::head_name), std::ios::trunc)
        << audit_file::head_text({9, record_of(orig_[8]).hash});
    auto v = verified();
    EXPECT_TRUE(v.ok) << v.why;
    append(1);
    v = verified();
    EXPECT_TRUE(v.ok) << v.why;
    EXPECT_EQ(v.last_seq, 11u);
}
