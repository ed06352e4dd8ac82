// Robustness tables (d) and (e): C_Initialize, configurations, interfaces (robustness.h says what each binary holds).
#include "robustness.h"

using namespace robust;
using namespace ukeytest;
using modtest::module_path;
using namespace std::chrono_literals;

namespace {

// ============================================================================
// (d) C_Initialize arguments, C_Finalize, configuration errors
// ============================================================================

class InitTest : public modtest::ModuleTest<> {
protected:
    void SetUp() override { load(std::make_unique<TestEnv>()); }
    // The module is not initialised: a plain call says so.
    void expect_not_initialized()
    {
        CK_ULONG n = 0;
        EXPECT_RV(CKR_CRYPTOKI_NOT_INITIALIZED, fl()->C_GetSlotList(CK_FALSE, nullptr, &n))
            << "module must stay uninitialised after a failed C_Initialize";
    }
    // Initialised and usable: the test token is there.
    void expect_usable()
    {
        EXPECT_NO_THROW(slot_by_label(fl(), modtest::kDefaultToken.label));
    }
};

// Application-supplied mutex callbacks that work (and count their use).
struct AppMutexes {
    static inline std::atomic<int> created{0}, destroyed{0}, locked{0}, unlocked{0};
    static CK_RV create(void** m)
    {
        if (!m)
            return CKR_ARGUMENTS_BAD;
        *m = new std::mutex;
        ++created;
        return CKR_OK;
    }
    static CK_RV destroy(void* m)
    {
        delete static_cast<std::mutex*>(m);
        ++destroyed;
        return CKR_OK;
    }
    static CK_RV lock(void* m)
    {
        static_cast<std::mutex*>(m)->lock();
        ++locked;
        return CKR_OK;
    }
    static CK_RV unlock(void* m)
    {
        static_cast<std::mutex*>(m)->unlock();
        ++unlocked;
        return CKR_OK;
    }
};

// C_Initialize: "pReserved ... must be NULL_PTR; if it is not, C_Initialize
// should return with the value CKR_ARGUMENTS_BAD".
TEST_F(InitTest, ReservedNotNullIsArgumentsBad)
{
    int dummy = 0;
    CK_C_INITIALIZE_ARGS args{};
    args.flags = CKF_OS_LOCKING_OK;
    args.pReserved = &dummy;
    EXPECT_RV(CKR_ARGUMENTS_BAD, module_->initialize(&args));
    expect_not_initialized();
    EXPECT_RV(CKR_OK, module_->initialize());
    expect_usable();
}

// C_Initialize: "If some, but not all, of the supplied function pointers to
// C_Initialize are non-NULL_PTR, then C_Initialize should return with the
// value CKR_ARGUMENTS_BAD." All 14 partial combinations, with and without
// CKF_OS_LOCKING_OK.
TEST_F(InitTest, PartialMutexCallbacksAreArgumentsBad)
{
    for (CK_FLAGS flags : {CK_FLAGS(0), CK_FLAGS(CKF_OS_LOCKING_OK)}) {
        for (unsigned mask = 1; mask < 15; ++mask) {
            CK_C_INITIALIZE_ARGS args{};
            args.flags = flags;
            if (mask & 1)
                args.CreateMutex = AppMutexes::create;
            if (mask & 2)
                args.DestroyMutex = AppMutexes::destroy;
            if (mask & 4)
                args.LockMutex = AppMutexes::lock;
            if (mask & 8)
                args.UnlockMutex = AppMutexes::unlock;
            SCOPED_TRACE("callback mask " + std::to_string(mask) + ", flags " +
                         std::to_string(flags));
            EXPECT_RV(CKR_ARGUMENTS_BAD, module_->initialize(&args));
            if (module_->initialized())
                module_->finalize();
            expect_not_initialized();
        }
    }
}

// All four callbacks, flags 0: the library must use them, or return
// CKR_CANT_LOCK if it cannot (C_Initialize, cases 3/4 of the threading options).
TEST_F(InitTest, AppMutexCallbacksWork)
{
    for (CK_FLAGS flags : {CK_FLAGS(0), CK_FLAGS(CKF_OS_LOCKING_OK)}) {
        SCOPED_TRACE("flags " + std::to_string(flags));
        CK_C_INITIALIZE_ARGS args{AppMutexes::create, AppMutexes::destroy, AppMutexes::lock,
                                  AppMutexes::unlock, flags, nullptr};
        CK_RV rv = module_->initialize(&args);
        if (flags == 0)
            EXPECT_RV_IN(rv, CKR_OK, CKR_CANT_LOCK);
        else
            EXPECT_RV(CKR_OK, rv);
        if (rv != CKR_OK)
            continue;
        // Exercise it from several threads.
        CK_SLOT_ID slot = slot_by_label(fl(), modtest::kDefaultToken.label);
        std::vector<std::thread> threads;
        std::atomic<int> errors{0};
        for (int t = 0; t < 4; ++t)
            threads.emplace_back([&] {
                for (int i = 0; i < 20; ++i) {
                    CK_SESSION_HANDLE s;
                    if (fl()->C_OpenSession(slot, CKF_SERIAL_SESSION, nullptr, nullptr, &s) !=
                            CKR_OK ||
                        fl()->C_CloseSession(s) != CKR_OK)
                        ++errors;
                }
            });
        for (auto& t : threads)
            t.join();
        EXPECT_EQ(errors, 0);
        EXPECT_RV(CKR_OK, module_->finalize());
        EXPECT_EQ(AppMutexes::locked.load(), AppMutexes::unlocked.load());
    }
}

TEST_F(InitTest, NullArgsAndCantCreateThreads)
{
    EXPECT_RV(CKR_OK, module_->initialize(nullptr));
    expect_usable();
    EXPECT_RV(CKR_OK, module_->finalize());

    CK_C_INITIALIZE_ARGS args{};
    args.flags = CKF_LIBRARY_CANT_CREATE_OS_THREADS | CKF_OS_LOCKING_OK;
    CK_RV rv = module_->initialize(&args);
    EXPECT_RV_IN(rv, CKR_OK, CKR_NEED_TO_CREATE_THREADS);
    if (rv == CKR_OK) {
        expect_usable();
        EXPECT_RV(CKR_OK, module_->finalize());
    }
}

// C_Initialize: CKR_CRYPTOKI_ALREADY_INITIALIZED on a second call; the first
// initialisation stays intact.
TEST_F(InitTest, SecondInitializeIsAlreadyInitialized)
{
    ASSERT_RV(CKR_OK, module_->initialize());
    EXPECT_RV(CKR_CRYPTOKI_ALREADY_INITIALIZED, fl()->C_Initialize(nullptr));
    CK_C_INITIALIZE_ARGS args{};
    args.flags = CKF_OS_LOCKING_OK;
    EXPECT_RV(CKR_CRYPTOKI_ALREADY_INITIALIZED, fl()->C_Initialize(&args));
    expect_usable();
}

// C_Finalize: non-NULL pReserved -> CKR_ARGUMENTS_BAD (and nothing is
// finalised); a second C_Finalize -> CKR_CRYPTOKI_NOT_INITIALIZED.
TEST_F(InitTest, FinalizeArguments)
{
    ASSERT_RV(CKR_OK, module_->initialize());
    int dummy = 0;
    EXPECT_RV(CKR_ARGUMENTS_BAD, fl()->C_Finalize(&dummy));
    expect_usable();
    EXPECT_RV(CKR_OK, module_->finalize());
    EXPECT_RV(CKR_CRYPTOKI_NOT_INITIALIZED, fl()->C_Finalize(nullptr));
}

TEST_F(InitTest, RepeatedInitializeFinalizeCycles)
{
    std::vector<CK_SLOT_ID> first;
    for (int i = 0; i < 5; ++i) {
        SCOPED_TRACE("cycle " + std::to_string(i));
        ASSERT_RV(CKR_OK, module_->initialize());
        auto slots = slot_list(fl(), true);
        if (i == 0)
            first = slots;
        EXPECT_EQ(slots, first);
        CK_SESSION_HANDLE s = open_session(fl(), slot_by_label(fl(), modtest::kDefaultToken.label));
        login(fl(), s, CKU_USER, modtest::kDefaultToken.user_pin);
        ASSERT_RV(CKR_OK, module_->finalize());
        expect_not_initialized();
    }
}

// After C_WaitForSlotEvent(CKF_DONT_BLOCK): CKR_NO_EVENT, or an event for a
// real slot (C_WaitForSlotEvent).
TEST_F(InitTest, WaitForSlotEventDontBlock)
{
    ASSERT_RV(CKR_OK, module_->initialize());
    auto slots = slot_list(fl(), false);
    for (int i = 0; i < 3; ++i) {
        CK_SLOT_ID slot = kBogusSlot;
        CK_RV rv = fl()->C_WaitForSlotEvent(CKF_DONT_BLOCK, &slot, nullptr);
        EXPECT_RV_IN(rv, CKR_NO_EVENT, CKR_OK);
        if (rv == CKR_OK) {
            EXPECT_NE(std::find(slots.begin(), slots.end(), slot), slots.end())
                << "event for unknown slot " << slot;
        }
    }
}

// Blocking C_WaitForSlotEvent: CKR_FUNCTION_NOT_SUPPORTED is allowed for now;
// if it does block, C_Finalize from another thread must unblock it with
// CKR_CRYPTOKI_NOT_INITIALIZED (C_Finalize). Runs in a child process so a hang
// cannot take the test binary down.
TEST_F(InitTest, WaitForSlotEventBlockingNeverHangs)
{
    auto r = run_in_child(
        [&](ChildReport& rep) {
            if (!rep.expect_rv(CKR_OK, module_->initialize(), "C_Initialize"))
                return;
            std::atomic<bool> done{false};
            std::atomic<CK_RV> result{CKR_GENERAL_ERROR};
            std::thread waiter([&] {
                CK_SLOT_ID slot = 0;
                result = fl()->C_WaitForSlotEvent(0, &slot, nullptr);
                done = true;
            });
            std::this_thread::sleep_for(300ms);
            if (done) {
                // Nothing happens to the slots here: the blocking form must block.
                rep.fail("blocking C_WaitForSlotEvent returned " + rv_name(result.load()) +
                         " while nothing happened");
                waiter.join();
                rep.expect_rv(CKR_OK, module_->finalize(), "C_Finalize");
                return;
            }
            rep.expect_rv(CKR_OK, module_->finalize(), "C_Finalize while a thread waits");
            for (int i = 0; i < 50 && !done; ++i)
                std::this_thread::sleep_for(100ms);
            if (!done) {
                rep.fail("C_WaitForSlotEvent still blocked 5 s after C_Finalize");
                waiter.detach();
                return;
            }
            waiter.join();
            rep.expect_rv(CKR_CRYPTOKI_NOT_INITIALIZED, result.load(),
                          "blocked C_WaitForSlotEvent after C_Finalize");
        },
        20s);
    EXPECT_TRUE(r.ok()) << r.describe();
}

// ---- configuration errors ----------------------------------------------------

struct ConfigCase {
    const char* name;
    // Breaks the configuration of `env` (ukey.conf or the environment).
    std::function<void(TestEnv&)> apply;
};

void PrintTo(const ConfigCase& c, std::ostream* os)
{
    *os << c.name;
}

std::string backend_block(const std::string& name, const std::string& module)
{
    return "\n[[backend]]\nname = \"" + name + "\"\nmodule = \"" + module +
           "\"\npin_counter = \"ukey\"\n";
}

std::string state_line(TestEnv& env)
{
    return "state_dir = \"" + env.state_dir().string() + "\"\n";
}

const std::vector<ConfigCase>& config_cases()
{
    static const std::vector<ConfigCase> cases = {
        {"ConfigFileMissing",
         [](TestEnv& env) { env.set_ukey_conf_variable((env.dir() / "no-such.conf").string()); }},
        {"ConfigPathIsDirectory",
         [](TestEnv& env) { env.set_ukey_conf_variable(env.dir().string()); }},
        {"NotToml", [](TestEnv& env) { env.write_ukey_conf("this is [not toml\n\"\n= = =\n"); }},
        {"BinaryGarbage",
         [](TestEnv& env) { env.write_ukey_conf(std::string("\x00\xff\xfe\x01[[", 6)); }},
        {"UnterminatedString",
         [](TestEnv& env) {
             env.write_ukey_conf(state_line(env) +
                                 "[[backend]]\nname = \"softhsm\nmodule = \"x\"\n");
         }},
        {"BackendWithoutModule",
         [](TestEnv& env) {
             env.write_ukey_conf(state_line(env) +
                                 "\n[[backend]]\nname = \"softhsm\"\npin_counter = \"ukey\"\n");
         }},
        {"ModuleWrongType",
         [](TestEnv& env) {
             env.write_ukey_conf(state_line(env) +
                                 "\n[[backend]]\nname = \"softhsm\"\nmodule = 42\n");
         }},
        {"DuplicateBackendNames",
         [](TestEnv& env) {
             env.write_ukey_conf(state_line(env) +
                                 backend_block("softhsm", softhsm2_module_path()) +
                                 backend_block("softhsm", softhsm2_module_path()));
         }},
        {"BackendModuleMissing",
         [](TestEnv& env) {
             env.write_ukey_conf(state_line(env) +
                                 backend_block("softhsm", (env.dir() / "nope.so").string()));
         }},
        {"BackendModuleNotALibrary",
         [](TestEnv& env) {
             auto p = env.dir() / "fake.so";
             std::FILE* f = std::fopen(p.c_str(), "w");
             std::fputs("not an ELF file\n", f);
             std::fclose(f);
             env.write_ukey_conf(state_line(env) + backend_block("softhsm", p.string()));
         }},
        {"BackendModuleWithoutGetFunctionList",
         [](TestEnv& env) {
             // A real shared library that is not a PKCS#11 module.
             Dl_info info{};
             dladdr(reinterpret_cast<void*>(&EVP_sha256), &info);
             env.write_ukey_conf(state_line(env) +
                                 backend_block("softhsm", info.dli_fname ? info.dli_fname : "?"));
         }},
        {"BackendInitializeFails",
         [](TestEnv& env) {
             // SoftHSM2 returns CKR_GENERAL_ERROR from C_Initialize when its
             // configuration file cannot be read.
             setenv("SOFTHSM2_CONF", (env.dir() / "missing-softhsm2.conf").c_str(), 1);
         }},
    };
    return cases;
}

class ConfigError : public InitTest, public testing::WithParamInterface<ConfigCase> {};

// The brief for ukey: a missing/broken configuration or a backend that cannot
// be loaded makes C_Initialize fail cleanly with CKR_FUNCTION_FAILED or
// CKR_GENERAL_ERROR (both are C_Initialize return values in v2.40), leaving
// the module uninitialised; once the configuration is fixed it initialises.
TEST_P(ConfigError, InitializeFailsCleanly)
{
    std::string softhsm_conf = getenv("SOFTHSM2_CONF") ? getenv("SOFTHSM2_CONF") : "";
    GetParam().apply(*env_);
    for (int attempt = 0; attempt < 2; ++attempt) {
        SCOPED_TRACE("attempt " + std::to_string(attempt));
        CK_RV rv = module_->initialize();
        EXPECT_RV_IN(rv, CKR_FUNCTION_FAILED, CKR_GENERAL_ERROR);
        if (rv == CKR_OK)
            module_->finalize();
        expect_not_initialized();
    }
    // Repair and retry.
    setenv("SOFTHSM2_CONF", softhsm_conf.c_str(), 1);
    env_->set_ukey_conf_variable(env_->ukey_conf_path().string());
    env_->rewrite_ukey_conf();
    ASSERT_RV(CKR_OK, module_->initialize());
    expect_usable();
}

INSTANTIATE_TEST_SUITE_P(All, ConfigError, testing::ValuesIn(config_cases()),
                         [](const testing::TestParamInfo<ConfigCase>& i) {
                             return std::string(i.param.name);
                         });

// UKEY_CONF unset: whatever the module's default, no crash and a defined result.
TEST_F(InitTest, ConfigVariableUnsetDoesNotCrash)
{
    env_->set_ukey_conf_variable(std::nullopt);
    CK_RV rv = module_->initialize();
    EXPECT_RV_IN(rv, CKR_OK, CKR_FUNCTION_FAILED, CKR_GENERAL_ERROR);
}

// ============================================================================
// (e) C_GetInterfaceList / C_GetInterface
// ============================================================================

class Interfaces : public InitTest {
protected:
    void SetUp() override
    {
        InitTest::SetUp();
        get_list_ = reinterpret_cast<CK_C_GetInterfaceList>(module_->symbol("C_GetInterfaceList"));
        get_ = reinterpret_cast<CK_C_GetInterface>(module_->symbol("C_GetInterface"));
        ASSERT_NE(get_list_, nullptr);
        ASSERT_NE(get_, nullptr);
    }
    std::vector<CK_INTERFACE> list()
    {
        CK_ULONG n = 0;
        check(get_list_(nullptr, &n), "C_GetInterfaceList(count)");
        std::vector<CK_INTERFACE> v(n);
        check(get_list_(v.data(), &n), "C_GetInterfaceList");
        v.resize(n);
        return v;
    }
    static std::string name(const CK_INTERFACE& i)
    {
        return i.pInterfaceName ? reinterpret_cast<const char*>(i.pInterfaceName) : "(null)";
    }
    static CK_VERSION version(const CK_INTERFACE& i)
    {
        return static_cast<CK_FUNCTION_LIST*>(i.pFunctionList)->version;
    }
    CK_C_GetInterfaceList get_list_ = nullptr;
    CK_C_GetInterface get_ = nullptr;
};

// PKCS#11 v3.0 C_GetInterfaceList/C_GetInterface (offered by this v2.40
// module for discovery): they work without C_Initialize and the "PKCS 11"
// interface, version 2.40, is the C_GetFunctionList list.
TEST_F(Interfaces, ListContainsTheFunctionList)
{
    for (bool initialized : {false, true}) {
        SCOPED_TRACE(initialized ? "after C_Initialize" : "before C_Initialize");
        if (initialized) {
            ASSERT_RV(CKR_OK, module_->initialize());
        }
        auto ifs = list();
        ASSERT_GE(ifs.size(), 1u);
        int matches = 0;
        for (const auto& i : ifs) {
            ASSERT_NE(i.pFunctionList, nullptr);
            ASSERT_NE(i.pInterfaceName, nullptr);
            if (name(i) == UKEY_INTERFACE_NAME && version(i).major == 2 &&
                version(i).minor == 40) {
                ++matches;
                EXPECT_EQ(i.pFunctionList, static_cast<void*>(fl()));
            }
        }
        EXPECT_EQ(matches, 1) << "one \"PKCS 11\" 2.40 interface expected";
    }
}

TEST_F(Interfaces, ListArguments)
{
    EXPECT_RV(CKR_ARGUMENTS_BAD, get_list_(nullptr, nullptr));
    CK_INTERFACE one{};
    EXPECT_RV(CKR_ARGUMENTS_BAD, get_list_(&one, nullptr));
    CK_ULONG n = 0;
    ASSERT_RV(CKR_OK, get_list_(nullptr, &n));
    ASSERT_GE(n, 1u);
    // v3.0 C_GetInterfaceList follows the v2.40 "Conventions for functions
    // returning output in a variable-length buffer": too small a buffer gives
    // CKR_BUFFER_TOO_SMALL and the needed count.
    CK_ULONG small = 0;
    EXPECT_RV(CKR_BUFFER_TOO_SMALL, get_list_(&one, &small));
    EXPECT_EQ(small, n);
}

TEST_F(Interfaces, GetInterfaceReturnsTheFunctionList)
{
    CK_UTF8CHAR pkcs11_name[] = UKEY_INTERFACE_NAME;
    CK_VERSION v240{2, 40};
    struct Case {
        const char* what;
        CK_UTF8CHAR* name;
        CK_VERSION* version;
    } cases[] = {
        {"NULL name (default interface)", nullptr, nullptr},
        {"\"PKCS 11\", any version", pkcs11_name, nullptr},
        {"\"PKCS 11\", version 2.40", pkcs11_name, &v240},
        {"NULL name, version 2.40", nullptr, &v240},
    };
    for (bool initialized : {false, true}) {
        if (initialized) {
            ASSERT_RV(CKR_OK, module_->initialize());
        }
        for (const auto& c : cases) {
            SCOPED_TRACE(std::string(c.what) + (initialized ? " (initialised)" : ""));
            CK_INTERFACE* iface = nullptr;
            ASSERT_RV(CKR_OK, get_(c.name, c.version, &iface, 0));
            ASSERT_NE(iface, nullptr);
            EXPECT_EQ(iface->pFunctionList, static_cast<void*>(fl()));
            EXPECT_EQ(name(*iface), UKEY_INTERFACE_NAME);
        }
    }
}

TEST_F(Interfaces, GetInterfaceRejectsWhatIsNotOffered)
{
    CK_INTERFACE* iface = nullptr;
    CK_UTF8CHAR pkcs11_name[] = UKEY_INTERFACE_NAME;
    EXPECT_RV(CKR_ARGUMENTS_BAD, get_(pkcs11_name, nullptr, nullptr, 0));

    auto ifs = list();
    auto offered = [&](const std::string& n, int major, int minor, CK_FLAGS flags) {
        for (const auto& i : ifs)
            if (name(i) == n && (major < 0 || (version(i).major == major &&
                                               version(i).minor == minor)) &&
                (i.flags & flags) == flags)
                return true;
        return false;
    };
    CK_UTF8CHAR other[] = "Vendor ukeytest";
    EXPECT_NE(get_(other, nullptr, &iface, 0), CKR_OK) << "unknown interface name";
    CK_VERSION v30{3, 0};
    if (!offered(UKEY_INTERFACE_NAME, 3, 0, 0)) {
        EXPECT_NE(get_(pkcs11_name, &v30, &iface, 0), CKR_OK) << "3.0 is not offered";
    }
    if (!offered(UKEY_INTERFACE_NAME, -1, -1, CKF_INTERFACE_FORK_SAFE)) {
        EXPECT_NE(get_(pkcs11_name, nullptr, &iface, CKF_INTERFACE_FORK_SAFE), CKR_OK)
            << "no fork-safe interface is offered";
    }
}

}  // namespace
