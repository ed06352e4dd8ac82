#include "pin_common.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace pintest {

using ukeytest::P11Error;

std::string flag_names(CK_FLAGS f)
{
    static const std::pair<CK_FLAGS, const char*> names[] = {
        {CKF_USER_PIN_COUNT_LOW, "CKF_USER_PIN_COUNT_LOW"}, {CKF_USER_PIN_FINAL_TRY, "CKF_USER_PIN_FINAL_TRY"},
        {CKF_USER_PIN_LOCKED, "CKF_USER_PIN_LOCKED"},       {CKF_USER_PIN_TO_BE_CHANGED, "CKF_USER_PIN_TO_BE_CHANGED"},
        {CKF_SO_PIN_COUNT_LOW, "CKF_SO_PIN_COUNT_LOW"},     {CKF_SO_PIN_FINAL_TRY, "CKF_SO_PIN_FINAL_TRY"},
        {CKF_SO_PIN_LOCKED, "CKF_SO_PIN_LOCKED"},
    };
    std::string s;
    for (const auto& [bit, name] : names)
        if (f & bit)
            s.append(s.empty() ? "" : "|").append(name);
    return s.empty() ? "0" : s;
}

// ---- ukey.conf ----------------------------------------------------------------

namespace {
std::string quoted(const std::string& s)
{
    for (char c : s)
        if (c == '"' || c == '\\' || static_cast<unsigned char>(c) < 0x20)
            throw std::invalid_argument("conf_text: unexpected character in " + s);
    return "\"" + s + "\"";
}
} // namespace

std::string conf_text(const ukeytest::TestEnv& env, const std::vector<BackendLine>& backends,
                      const std::string& pin_table)
{
    std::string s = "# written by tests/pin\n"
                    "state_dir = " +
                    quoted(env.state_dir().string()) +
                    "\n\n[log]\nlevel = \"warning\"\nstderr = true\nsyslog = false\n";
    if (!pin_table.empty())
        s += "\n[pin]\n" + pin_table;
    for (const auto& b : backends)
        s += "\n[[backend]]\nname = " + quoted(b.name) + "\nmodule = " + quoted(b.module) +
             "\npin_counter = " + quoted(b.pin_counter) + "\n";
    return s;
}

// ---- vendor interface -----------------------------------------------------------

UKEY_FUNCTION_LIST* vendor(const ukeytest::Module& m)
{
    auto get = reinterpret_cast<CK_C_GetInterface>(m.symbol("C_GetInterface"));
    if (!get)
        throw std::runtime_error(m.path() + " exports no C_GetInterface");
    CK_INTERFACE* iface = nullptr;
    CK_RV rv = get(reinterpret_cast<CK_UTF8CHAR_PTR>(const_cast<char*>(UKEY_VENDOR_INTERFACE)), nullptr, &iface, 0);
    if (rv != CKR_OK || !iface || !iface->pFunctionList)
        throw P11Error("C_GetInterface(\"" UKEY_VENDOR_INTERFACE "\")", rv == CKR_OK ? CKR_GENERAL_ERROR : rv);
    return static_cast<UKEY_FUNCTION_LIST*>(iface->pFunctionList);
}

UKEY_PIN_STATUS pin_status(UKEY_FUNCTION_LIST* v, CK_SLOT_ID slot)
{
    UKEY_PIN_STATUS s{};
    ukeytest::check(v->C_UkeyGetPinStatus(slot, &s), "C_UkeyGetPinStatus");
    return s;
}

std::string describe(const UKEY_PIN_STATUS& s)
{
    auto n = [](CK_ULONG v) {
        return v == CK_UNAVAILABLE_INFORMATION ? std::string("?") : std::to_string(v);
    };
    return "user " + n(s.userTriesLeft) + "/" + n(s.userMaxTries) + ", so " + n(s.soTriesLeft) + "/" +
           n(s.soMaxTries) + ", flags 0x" + [&] {
               char b[32];
               std::snprintf(b, sizeof b, "%lx", static_cast<unsigned long>(s.flags));
               return std::string(b);
           }();
}

// ---- PKCS#11 shorthands -----------------------------------------------------------

namespace {
CK_UTF8CHAR_PTR utf8(std::string& s)
{
    return reinterpret_cast<CK_UTF8CHAR_PTR>(s.data());
}
} // namespace

CK_RV try_login(CK_FUNCTION_LIST* fl, CK_SESSION_HANDLE s, CK_USER_TYPE who, const std::string& pin)
{
    std::string p = pin;
    return fl->C_Login(s, who, utf8(p), p.size());
}

CK_RV init_pin(CK_FUNCTION_LIST* fl, CK_SESSION_HANDLE s, const std::string& pin)
{
    std::string p = pin;
    return fl->C_InitPIN(s, utf8(p), p.size());
}

CK_RV set_pin(CK_FUNCTION_LIST* fl, CK_SESSION_HANDLE s, const std::string& old_pin, const std::string& new_pin)
{
    std::string o = old_pin, n = new_pin;
    return fl->C_SetPIN(s, utf8(o), o.size(), utf8(n), n.size());
}

CK_RV init_token(CK_FUNCTION_LIST* fl, CK_SLOT_ID slot, const std::string& so_pin, const std::string& label)
{
    std::string p = so_pin, l = ukeytest::padded_label(label);
    return fl->C_InitToken(slot, utf8(p), p.size(), utf8(l));
}

CK_FLAGS pin_flags(CK_FUNCTION_LIST* fl, CK_SLOT_ID slot)
{
    return ukeytest::token_info(fl, slot).flags & kPinBits;
}

CK_STATE session_state(CK_FUNCTION_LIST* fl, CK_SESSION_HANDLE s)
{
    CK_SESSION_INFO si{};
    ukeytest::check(fl->C_GetSessionInfo(s, &si), "C_GetSessionInfo");
    return si.state;
}

void expect_wrong_pins(CK_FUNCTION_LIST* fl, CK_SESSION_HANDLE s, CK_USER_TYPE who, int n)
{
    for (int i = 0; i < n; ++i)
        EXPECT_RV(CKR_PIN_INCORRECT, try_login(fl, s, who, "wrong")) << "wrong PIN " << i + 1 << " of " << n;
}

// ---- spy log -----------------------------------------------------------------------

namespace {
int count_lines(const fs::path& log, const std::string& line)
{
    std::ifstream in(log);
    int n = 0;
    for (std::string l; std::getline(in, l);)
        n += l == line ? 1 : 0;
    return n;
}
} // namespace

int spy_logins(const fs::path& log, CK_USER_TYPE who)
{
    return count_lines(log, "login " + std::to_string(who));
}

int spy_results(const fs::path& log, CK_RV rv)
{
    char hex[32];
    std::snprintf(hex, sizeof hex, "rv %lx", static_cast<unsigned long>(rv));
    return count_lines(log, hex);
}

// ---- state files --------------------------------------------------------------------

std::vector<fs::path> pin_dir_entries(const ukeytest::TestEnv& env)
{
    std::vector<fs::path> out;
    std::error_code ec;
    if (!fs::is_directory(fs::symlink_status(pin_dir(env), ec)))
        return out;
    for (const auto& e : fs::directory_iterator(pin_dir(env)))
        out.push_back(e.path());
    return out;
}

fs::path pin_file(const ukeytest::TestEnv& env)
{
    std::vector<fs::path> found;
    for (const auto& p : pin_dir_entries(env))
        if (p.extension() == ".pin")
            found.push_back(p);
    if (found.size() != 1)
        throw std::runtime_error("expected exactly one .pin file in " + pin_dir(env).string() + ", found " +
                                 std::to_string(found.size()));
    return found[0];
}

void overwrite_file(const fs::path& p, const std::string& data)
{
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    if (!out || !(out << data) || !out.flush())
        throw std::runtime_error("cannot write " + p.string());
}

// ---- SpyKey --------------------------------------------------------------------------

namespace {
std::unique_ptr<ukeytest::TestEnv> spy_env(SpyTarget target)
{
    ukeytest::TokenSpec t;
    t.label = "ukey-test";
    t.so_pin = SpyKey::kSo;
    t.user_pin = SpyKey::kUser;
    ukeytest::BackendSpec b;
    b.name = "softhsm";
    b.tokens = {t};
    if (target == SpyTarget::fakecard)
        b.tokens.clear();
    return std::make_unique<ukeytest::TestEnv>(std::vector<ukeytest::BackendSpec>{b});
}
} // namespace

SpyKey::SpyKey(const std::string& pin_table, SpyTarget target)
    : label_(target == SpyTarget::softhsm ? "ukey-test" : FAKECARD_LABEL),
      user_pin_(target == SpyTarget::softhsm ? kUser : FAKECARD_DEFAULT_USER_PIN),
      so_pin_(target == SpyTarget::softhsm ? kSo : FAKECARD_DEFAULT_SO_PIN), env_(spy_env(target)),
      spy_log_(env_->dir() / "spy.log"),
      spy_module_var_(SPY_MODULE_ENV, target == SpyTarget::softhsm ? std::string(ukeytest::softhsm2_module_path())
                                                                    : std::string(UKEY_TEST_FAKECARD_PATH)),
      spy_log_var_(SPY_LOG_ENV, spy_log_.string())
{
    if (target == SpyTarget::fakecard)
        card_var_ = std::make_unique<ukeytest::ScopedEnvVar>(FAKECARD_STATE_ENV, (env_->dir() / "card.state").string());
    env_->write_ukey_conf(conf_text(*env_, {BackendLine{"softhsm", UKEY_TEST_SPY_PATH, "ukey"}}, pin_table));
    module_ = std::make_unique<ukeytest::Module>(module_path());
    vendor_ = vendor(*module_);
}

SpyKey::~SpyKey()
{
    module_.reset(); // C_Finalize if still initialised
}

void SpyKey::start()
{
    ukeytest::check(module_->initialize(), "C_Initialize of " + module_->path());
    slot_ = ukeytest::slot_by_label(fl(), label_);
}

void SpyKey::stop()
{
    ukeytest::check(module_->finalize(), "C_Finalize of " + module_->path());
}

void SpyKey::unlock() const
{
    CK_SESSION_HANDLE s = open(true);
    ukeytest::check(try_login(fl(), s, CKU_SO, so_pin_), "C_Login(SO)");
    ukeytest::check(init_pin(fl(), s, user_pin_), "C_InitPIN");
    ukeytest::check(fl()->C_Logout(s), "C_Logout");
    ukeytest::check(fl()->C_CloseSession(s), "C_CloseSession");
}

// ---- stderr ---------------------------------------------------------------------------

void Fd::reset(int fd)
{
    if (fd_ >= 0)
        close(fd_);
    fd_ = fd;
}

Pipe make_pipe()
{
    int fds[2];
    if (pipe(fds) != 0)
        throw std::runtime_error(std::string("pipe: ") + std::strerror(errno));
    return Pipe{Fd(fds[0]), Fd(fds[1])};
}

StderrCapture::StderrCapture()
{
    std::fflush(stderr);
    char templ[] = "/tmp/ukey-pin-stderr-XXXXXX";
    file_.reset(mkstemp(templ));
    if (file_.get() < 0)
        throw std::runtime_error(std::string("mkstemp: ") + std::strerror(errno));
    unlink(templ);
    saved_.reset(dup(STDERR_FILENO));
    dup2(file_.get(), STDERR_FILENO);
}

std::string StderrCapture::stop()
{
    if (saved_.get() >= 0) {
        std::fflush(stderr);
        dup2(saved_.get(), STDERR_FILENO);
        saved_.reset();
        char buf[4096];
        ssize_t n;
        off_t off = 0;
        while ((n = pread(file_.get(), buf, sizeof buf, off)) > 0) {
            text_.append(buf, static_cast<size_t>(n));
            off += n;
        }
        file_.reset();
    }
    return text_;
}

// ---- children --------------------------------------------------------------------------

Child::Child(const std::function<std::string()>& fn)
{
    Pipe channel = make_pipe();
    pid_ = fork();
    if (pid_ < 0)
        throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
    if (pid_ == 0) {
        channel.read.reset();
        alarm(120); // a hung child must not hang the suite
        std::string out;
        int code = 0;
        try {
            out = fn();
        } catch (const std::exception& e) {
            out = std::string("exception: ") + e.what();
            code = 1;
        } catch (...) {
            out = "unknown exception";
            code = 1;
        }
        size_t off = 0;
        while (off < out.size()) {
            ssize_t n = write(channel.write.get(), out.data() + off, out.size() - off);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                break;
            off += static_cast<size_t>(n);
        }
        _exit(code);
    }
    output_ = std::move(channel.read);
}

Child::~Child()
{
    if (pid_ > 0) {
        kill(pid_, SIGKILL);
        waitpid(pid_, nullptr, 0);
    }
}

std::string Child::wait(std::chrono::milliseconds timeout)
{
    std::string out;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    bool eof = false;
    while (!eof) {
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0)
            break;
        pollfd p{output_.get(), POLLIN, 0};
        int r = poll(&p, 1, static_cast<int>(left.count()));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        char buf[4096];
        ssize_t n = read(output_.get(), buf, sizeof buf);
        if (n > 0)
            out.append(buf, static_cast<size_t>(n));
        else if (n == 0 || errno != EINTR)
            eof = true;
    }
    int st = 0;
    if (!eof) {
        kill(pid_, SIGKILL);
        waitpid(pid_, &st, 0);
        status_ = "timeout";
    } else {
        waitpid(pid_, &st, 0);
        status_ = WIFEXITED(st) ? "exit " + std::to_string(WEXITSTATUS(st))
                                : "signal " + std::to_string(WTERMSIG(st));
    }
    pid_ = -1;
    output_.reset();
    return out;
}

void StartGate::child_side()
{
    pipe_.write.reset();
}

void StartGate::wait() const
{
    char c;
    while (read(pipe_.read.get(), &c, 1) < 0 && errno == EINTR) {
    }
}

void StartGate::release()
{
    child_side();
}

void ReadyPipe::signal() const
{
    char c = 'r';
    while (write(pipe_.write.get(), &c, 1) < 0 && errno == EINTR) {
    }
}

bool ReadyPipe::wait_for(int n, std::chrono::milliseconds timeout) const
{
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    int got = 0;
    while (got < n) {
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0)
            return false;
        pollfd p{pipe_.read.get(), POLLIN, 0};
        int r = poll(&p, 1, static_cast<int>(left.count()));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return false;
        char buf[64];
        ssize_t k = read(pipe_.read.get(), buf, std::min<size_t>(sizeof buf, static_cast<size_t>(n - got)));
        if (k > 0)
            got += static_cast<int>(k);
    }
    return true;
}

} // namespace pintest
