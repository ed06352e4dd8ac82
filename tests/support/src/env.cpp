#include "ukeytest/env.h"

#include "ukeytest/files.h"
#include "ukeytest/module.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <set>
#include <stdexcept>

namespace fs = std::filesystem;

namespace ukeytest {
namespace {

const char kSoftHsmConfVar[] = "SOFTHSM2_CONF";

// Copy SoftHSM2 to `to`, making it read its config path from `variable`
// instead of SOFTHSM2_CONF (see env.h).
void copy_softhsm_reading(const fs::path& from, const fs::path& to, const std::string& variable)
{
    if (variable.size() != std::strlen(kSoftHsmConfVar))
        throw std::logic_error("replacement variable must be as long as SOFTHSM2_CONF");
    std::string image = read_file(from);
    const std::string needle(kSoftHsmConfVar, sizeof kSoftHsmConfVar);  // with the NUL
    size_t at = image.find(needle);
    if (at == std::string::npos || image.find(needle, at + 1) != std::string::npos)
        throw std::runtime_error(from.string() +
                                 ": expected exactly one \"SOFTHSM2_CONF\" string to "
                                 "redirect; cannot run a second SoftHSM2 backend");
    image.replace(at, variable.size(), variable);
    write_file(to, image, 0700);
}

// Where TestEnv directories go: $UKEY_TEST_TMPDIR, else $TMPDIR, else
// /dev/shm when usable (SoftHSM2 and ukey fsync a lot; on a busy disk a
// tmpfs makes the suites many times faster), else /tmp.
std::string temp_base()
{
    for (const char* var : {"UKEY_TEST_TMPDIR", "TMPDIR"})
        if (const char* v = std::getenv(var); v && *v)
            return v;
    if (access("/dev/shm", W_OK | X_OK) == 0)
        return "/dev/shm";
    return "/tmp";
}

}  // namespace

// ---- ScopedEnvVar -------------------------------------------------------------

ScopedEnvVar::ScopedEnvVar(std::string name, const std::optional<std::string>& value)
    : name_(std::move(name))
{
    if (const char* old = std::getenv(name_.c_str()))
        old_ = old;
    if (value)
        setenv(name_.c_str(), value->c_str(), 1);
    else
        unsetenv(name_.c_str());
}

ScopedEnvVar::~ScopedEnvVar()
{
    if (old_)
        setenv(name_.c_str(), old_->c_str(), 1);
    else
        unsetenv(name_.c_str());
}

// ---- TestEnv ----------------------------------------------------------------------

TestEnv::TestEnv() : TestEnv(std::vector<BackendSpec>{BackendSpec{}}) {}

TestEnv::TestEnv(std::vector<BackendSpec> backends) : backends_(std::move(backends))
{
    if (backends_.empty())
        throw std::invalid_argument("TestEnv needs at least one backend");
    std::set<std::string> names;
    for (const auto& b : backends_)
        if (!names.insert(b.name).second)
            throw std::invalid_argument("duplicate backend name " + b.name);

    // Should this throw, the members go: env_ restores the variables, dir_
    // removes the folder.
    dir_ = std::make_unique<TempDir>(temp_base(), "ukey-test-");
    make_private_dir(state_dir());
    env_.push_back(std::make_unique<ScopedEnvVar>("UKEY_CONF", ukey_conf_path().string()));
    for (size_t i = 0; i < backends_.size(); ++i)
        prepare_backend(i);
    rewrite_ukey_conf();
    for (size_t i = 0; i < backends_.size(); ++i) {
        if (backends_[i].tokens.empty())
            continue;
        with_softhsm(i, [&](CK_FUNCTION_LIST* fl) {
            for (const auto& spec : backends_[i].tokens)
                tokens_.push_back(init_token(fl, i, spec));
        });
    }
}

TestEnv::~TestEnv()
{
    while (!env_.empty())
        env_.pop_back();  // restore in reverse order
}

void TestEnv::prepare_backend(size_t i)
{
    const auto& b = backends_[i];
    fs::path bdir = dir() / ("backend-" + b.name);
    make_private_dir(bdir);
    make_private_dir(token_dir(i));
    std::string conf = "# written by ukeytest::TestEnv\n"
                       "directories.tokendir = " +
                       token_dir(i).string() +
                       "\n"
                       "objectstore.backend = file\n"
                       "log.level = ERROR\n" +
                       b.softhsm_conf_extra + "\n";
    write_file(softhsm_conf(i), conf);
    if (i > 0)
        copy_softhsm_reading(softhsm2_module_path(), softhsm_library(i), softhsm_conf_variable(i));
    env_.push_back(
        std::make_unique<ScopedEnvVar>(softhsm_conf_variable(i), softhsm_conf(i).string()));
}

fs::path TestEnv::softhsm_library(size_t backend) const
{
    if (backend == 0)
        return softhsm2_module_path();
    return dir() / ("backend-" + backends_.at(backend).name) / "libsofthsm2.so";
}

fs::path TestEnv::softhsm_conf(size_t backend) const
{
    return dir() / ("backend-" + backends_.at(backend).name) / "softhsm2.conf";
}

fs::path TestEnv::token_dir(size_t backend) const
{
    return dir() / ("backend-" + backends_.at(backend).name) / "tokens";
}

std::string TestEnv::softhsm_conf_variable(size_t backend) const
{
    if (backend == 0)
        return kSoftHsmConfVar;
    if (backend > 999)
        throw std::invalid_argument("too many backends");
    char name[32];
    std::snprintf(name, sizeof name, "SOFTHSM2_C%03zu", backend);
    return name;
}

const TokenRecord& TestEnv::token(const std::string& label) const
{
    for (const auto& t : tokens_)
        if (t.spec.label == label)
            return t;
    throw std::out_of_range("TestEnv has no token labelled " + label);
}

std::string TestEnv::ukey_conf_text(const std::vector<size_t>& order) const
{
    std::vector<size_t> idx = order;
    if (idx.empty())
        for (size_t i = 0; i < backends_.size(); ++i)
            idx.push_back(i);
    std::string s = "# written by ukeytest::TestEnv\n"
                    "state_dir = " +
                    toml_string(state_dir().string()) + "\n";
    for (size_t i : idx) {
        const auto& b = backends_.at(i);
        s += "\n[[backend]]\n"
             "name = " +
             toml_string(b.name) +
             "\n"
             "module = " +
             toml_string(softhsm_library(i).string()) +
             "\n"
             "pin_counter = " +
             toml_string(b.pin_counter) + "\n";
    }
    return s;
}

void TestEnv::write_ukey_conf(const std::string& text) const
{
    write_file(ukey_conf_path(), text);
}

void TestEnv::rewrite_ukey_conf(const std::vector<size_t>& order) const
{
    write_ukey_conf(ukey_conf_text(order));
}

void TestEnv::set_ukey_conf_variable(const std::optional<std::string>& value)
{
    // The ScopedEnvVar created in the constructor restores the original value.
    if (value)
        setenv("UKEY_CONF", value->c_str(), 1);
    else
        unsetenv("UKEY_CONF");
}

const TokenRecord& TestEnv::add_token(size_t backend, const TokenSpec& spec)
{
    with_softhsm(backend,
                 [&](CK_FUNCTION_LIST* fl) { tokens_.push_back(init_token(fl, backend, spec)); });
    backends_[backend].tokens.push_back(spec);
    return tokens_.back();
}

void TestEnv::with_softhsm(size_t backend,
                           const std::function<void(CK_FUNCTION_LIST*)>& fn) const
{
    Module m(softhsm_library(backend).string());
    CK_RV rv = m.initialize();
    if (rv == CKR_CRYPTOKI_ALREADY_INITIALIZED)
        throw P11Error(
            "C_Initialize of " + m.path() +
                " (it is already initialised in this process: finalise the module under test "
                "before TestEnv::add_token/with_softhsm)",
            rv);
    check(rv, "C_Initialize of " + m.path());
    fn(m.fl());
    check(m.finalize(), "C_Finalize of " + m.path());
}

TokenRecord TestEnv::init_token(CK_FUNCTION_LIST* fl, size_t backend, const TokenSpec& spec) const
{
    std::set<std::string> serials_before;
    std::optional<CK_SLOT_ID> empty_slot;
    for (CK_SLOT_ID slot : slot_list(fl, true)) {
        CK_TOKEN_INFO ti = token_info(fl, slot);
        if (ti.flags & CKF_TOKEN_INITIALIZED)
            serials_before.insert(trim_field(ti.serialNumber));
        else if (!empty_slot)
            empty_slot = slot;
    }
    if (!empty_slot)
        throw std::runtime_error("SoftHSM2 offers no uninitialised token slot");

    std::string so_pin = spec.so_pin;
    std::string label = padded_label(spec.label);
    check(fl->C_InitToken(*empty_slot, reinterpret_cast<CK_UTF8CHAR*>(so_pin.data()),
                          so_pin.size(), reinterpret_cast<CK_UTF8CHAR*>(label.data())),
          "C_InitToken(" + spec.label + ")");

    // SoftHSM2 gives the new token a new slot ID; find it by label + new serial.
    std::optional<CK_SLOT_ID> slot;
    TokenRecord rec;
    rec.backend = backend;
    rec.spec = spec;
    for (CK_SLOT_ID s : slot_list(fl, true)) {
        CK_TOKEN_INFO ti = token_info(fl, s);
        if ((ti.flags & CKF_TOKEN_INITIALIZED) && trim_field(ti.label) == spec.label &&
            !serials_before.count(trim_field(ti.serialNumber))) {
            slot = s;
            rec.serial = trim_field(ti.serialNumber);
            rec.manufacturer = trim_field(ti.manufacturerID);
            rec.model = trim_field(ti.model);
            break;
        }
    }
    if (!slot)
        throw std::runtime_error("initialised token " + spec.label + " not found again");

    CK_SESSION_HANDLE session = open_session(fl, *slot, true);
    try {
        login(fl, session, CKU_SO, spec.so_pin);
        std::string user_pin = spec.user_pin;
        check(fl->C_InitPIN(session, reinterpret_cast<CK_UTF8CHAR*>(user_pin.data()),
                            user_pin.size()),
              "C_InitPIN(" + spec.label + ")");
        check(fl->C_Logout(session), "C_Logout");
    } catch (...) {
        fl->C_CloseSession(session);
        throw;
    }
    check(fl->C_CloseSession(session), "C_CloseSession");
    return rec;
}

}  // namespace ukeytest
