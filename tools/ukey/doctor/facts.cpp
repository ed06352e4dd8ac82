// What the doctor looks at, gathered once: the config, each backend loaded
// on its own, pcscd, the Keys ukey shows and what is on them, the renewal
// journals and the clock. Nothing here changes anything, and nothing asks
// for a PIN.
#include "doctor.h"
#include "run_tool.h"

#include "../cli.h"
#include "token/ckr_name.h"
#include "token/config.h"
#include "token/file_trust.h"

#include <PCSC/winscard.h>
#include <openssl/x509v3.h>

#include <dlfcn.h>
#include <link.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <tuple>
#include <filesystem>
#include <fstream>

namespace ukey::cli::doctor {

namespace {

// Whether a file names libpcsclite (linked, or dlopen'ed by name as OpenSC
// does). Reads at most 64 MiB.
bool names_pcsclite(const std::string& path)
{
    std::ifstream in(path, std::ios::binary);
    static constexpr std::string_view needle = "libpcsclite";
    std::string buf(1 << 16, '\0');
    std::string carry;
    for (std::size_t total = 0; in && total < (64u << 20);) {
        in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
        const auto n = static_cast<std::size_t>(in.gcount());
        if (n == 0)
            break;
        total += n;
        std::string chunk = carry + buf.substr(0, n);
        if (chunk.find(needle) != std::string::npos)
            return true;
        carry = chunk.substr(chunk.size() > needle.size() ? chunk.size() - needle.size() : 0);
    }
    return false;
}

// Loads one backend module on its own (before ukey's module, which would
// hold it initialised): does it load and initialise?
void probe(BackendFacts& b)
{
    auto file = trusted_file(b.config.module, "backend module");
    if (!file) {
        b.load_error = file.error().message;
        return;
    }
    dlerror();
    void* dl = dlopen(file->c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!dl) {
        const char* why = dlerror();
        b.load_error = "it does not load: " + escape::printable(why ? why : "unknown error");
        return;
    }
    // The module or a library it brought in (OpenSC: libopensc) reads cards
    // through pcscd.
    link_map* lm = nullptr;
    if (dlinfo(dl, RTLD_DI_LINKMAP, &lm) == 0)
        for (int n = 0; lm && n < 64 && !b.uses_pcsc; lm = lm->l_next, ++n)
            b.uses_pcsc = lm->l_name && *lm->l_name && names_pcsclite(lm->l_name);
    auto get = reinterpret_cast<CK_C_GetFunctionList>(dlsym(dl, "C_GetFunctionList"));
    CK_FUNCTION_LIST* fl = nullptr;
    if (!get || get(&fl) != CKR_OK || !fl) {
        b.load_error = "it is not a PKCS#11 module (no C_GetFunctionList)";
        dlclose(dl);
        return;
    }
    CK_C_INITIALIZE_ARGS args{};
    args.flags = CKF_OS_LOCKING_OK;
    CK_RV rv = fl->C_Initialize(&args);
    if (rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED) {
        b.load_error = "its C_Initialize failed with " + ckr_name(rv);
        dlclose(dl);
        return;
    }
    // No C_GetSlotList here: OpenSC would try every card driver on every
    // card once more (seconds each); ukey's module lists the slots next.
    fl->C_Finalize(nullptr);
    dlclose(dl);
}

void look_at_pcsc(PcscFacts& p)
{
    SCARDCONTEXT ctx = 0;
    p.establish = SCardEstablishContext(SCARD_SCOPE_SYSTEM, nullptr, nullptr, &ctx);
    if (p.establish != SCARD_S_SUCCESS)
        return;
    DWORD len = 0;
    p.list = SCardListReaders(ctx, nullptr, nullptr, &len);
    if (p.list == SCARD_S_SUCCESS && len > 0 && len < (1u << 20)) {
        std::string names(len, '\0');
        p.list = SCardListReaders(ctx, nullptr, names.data(), &len);
        for (std::size_t at = 0; p.list == SCARD_S_SUCCESS && at < names.size() && names[at] && p.readers.size() < 64;) {
            const std::string one = names.c_str() + at;
            p.readers.push_back({one, false, {}});
            at += one.size() + 1;
        }
    }
    // What is in each reader now (no wait).
    for (auto& r : p.readers) {
        SCARD_READERSTATE st{};
        st.szReader = r.name.c_str();
        st.dwCurrentState = SCARD_STATE_UNAWARE;
        if (SCardGetStatusChange(ctx, 0, &st, 1) != SCARD_S_SUCCESS || !(st.dwEventState & SCARD_STATE_PRESENT))
            continue;
        r.card = true;
        r.exclusive = (st.dwEventState & SCARD_STATE_EXCLUSIVE) != 0;
        static constexpr char digits[] = "0123456789ABCDEF";
        for (DWORD i = 0; i < st.cbAtr && i < sizeof st.rgbAtr; ++i) {
            r.atr += r.atr.empty() ? "" : " ";
            r.atr += digits[st.rgbAtr[i] >> 4];
            r.atr += digits[st.rgbAtr[i] & 15];
        }
    }
    SCardReleaseContext(ctx);
}

// timedatectl's NTPSynchronized, when there is a timedatectl that answers
// within 3 s; nullopt otherwise (containers, no systemd).
std::optional<bool> clock_synchronised()
{
    const auto out = run_tool({{"/usr/bin/timedatectl", "show", "-p", "NTPSynchronized", "--value"},
                               {"LC_ALL=C", "PATH=/usr/bin:/bin"}, 3000, 64});
    if (out && out->rfind("yes", 0) == 0)
        return true;
    if (out && out->rfind("no", 0) == 0)
        return false;
    return std::nullopt;
}

void look_at_key(const Facts& f, KeyFacts& k, const client::Module& m)
{
    k.name = k.info.label().empty() ? "the Key in slot " + std::to_string(k.info.slot)
                                    : "Key '" + escape::printable(k.info.label()) + "'";
    if (!k.info.serial().empty())
        k.name += " (serial " + escape::printable(k.info.serial()) + ")";
    if (!k.info.initialized())
        return;
    if (auto s = client::Session::open(m, k.info.slot, false)) {
        if (auto certs = client::read_certificates(**s))
            k.certs = std::move(*certs);
        else
            k.certs_error = certs.error().message;
    } else {
        k.certs_error = s.error().message;
    }
    if (!f.config)
        return;
    const auto path = client::journal_path(
        f.config->state_dir,
        client::key_identity(k.info.backend_name(), k.info.manufacturer(), k.info.model(), k.info.serial()));
    k.journal_path = path.string();
    if (auto r = client::load_refusal(client::refusal_path(path)); r)
        k.refusal = std::move(*r);
    else
        k.refusal_error = r.error().message;
    auto text = client::load_journal(path);
    if (!text) {
        k.journal_error = text.error().message;
        return;
    }
    if (!*text)
        return;
    if (auto j = client::parse_journal(**text))
        k.journal = std::move(*j);
    else
        k.journal_error = j.error().message;
}

// The one initialised Key the PIN is for (KEY, or the only one): its keys.
void log_in(Context& ctx, Facts& f, const PinSource& pin)
{
    KeyFacts* one = nullptr;
    for (auto& k : f.keys) {
        if (!k.info.initialized())
            continue;
        if (one)
            throw Failure(usage, "a PIN was given and several Keys are present: name the Key it is for");
        one = &k;
    }
    if (!one)
        return;
    auto s = user_session(ctx, one->info, pin, false);
    one->keys = must(client::read_keys(*s));
    one->logged_in = true;
}

// A card whose token the backend cannot read (P2.hardware-error; a card it
// does not recognise is P1's when pcscd shows it).
bool unreadable_token(CK_RV rv)
{
    return rv == CKR_DEVICE_ERROR || rv == CKR_DEVICE_MEMORY || rv == CKR_DEVICE_REMOVED ||
           rv == CKR_TOKEN_NOT_RECOGNIZED;
}

SlotFailure slot_failure(const client::Module& m, CK_SLOT_ID slot, CK_RV rv)
{
    SlotFailure s{slot, {}, {}, rv};
    CK_SLOT_INFO info{};
    if (m.f()->C_GetSlotInfo(slot, &info) == CKR_OK)
        s.reader = client::text(info.slotDescription);
    UKEY_SLOT_BACKEND b{};
    if (m.vendor() && m.vendor()->C_UkeyGetSlotBackend(slot, &b) == CKR_OK)
        s.backend = client::text(b.name);
    return s;
}

void look_at_browsers(Facts& f)
{
    const char* home = secure_getenv("HOME");
    if (!home || !*home)
        return;
    for (auto& db : browser_dbs(home))
        if (db.exists)
            f.browsers.push_back(std::move(db));
    // p11-kit-proxy loads every module registered with p11-kit.
    f.p11kit_registered = ukey_registered_with_p11kit();
    // What such a browser shows: certificates are public, no PIN is asked
    // (stdin is empty). The tool loads ukey's module with ukey's environment.
    // Without its heading certutil could not open the database at all.
    for (const auto& db : f.browsers)
        if (loads_ukey(f, db))
            if (auto listing = run_tool({{"/usr/bin/certutil", "-L", "-d", "sql:" + db.dir, "-h", "all"}, {}, 20000, 1u << 18});
                listing && listing->find("Certificate Nickname") != std::string::npos)
                f.browser_listings[db.dir] = std::move(*listing);
}

} // namespace

Facts gather(Context& ctx, const std::string& key_spec, bool offline, const PinSource* pin)
{
    Facts f;
    f.offline = offline;
    f.now = std::time(nullptr);
    f.key_spec = key_spec;
    f.config_path = config_path().string();
    if (auto cfg = load_tool_config(config_path()))
        f.config = std::move(*cfg);
    else
        f.config_error = cfg.error().message;
    f.config_missing = !f.config && access(f.config_path.c_str(), F_OK) != 0 && errno == ENOENT;

    if (f.config) {
        for (const auto& b : f.config->backends) {
            BackendFacts bf;
            bf.config = b;
            probe(bf);
            f.pcsc.needed = f.pcsc.needed || bf.uses_pcsc;
            f.backends.push_back(std::move(bf));
        }
    }
    look_at_pcsc(f.pcsc);
    f.module_path = ctx.module_path.empty() ? client::default_module_path() : ctx.module_path;
    look_at_browsers(f);
    look_at_p11kit(f);
    f.clock_synchronised = clock_synchronised();

    // ukey's module would fail the same way, and say it again in its log.
    if (!f.config)
        return f;
    for (const auto& b : f.backends)
        if (!b.load_error.empty() && !b.config.optional)
            return f;
    try {
        const client::Module& m = ctx.module();
        if (!key_spec.empty()) {
            f.keys.emplace_back().info = select_key(ctx, key_spec);
        } else if (auto slots = m.slots(true)) {
            // Slot by slot: a card the backend does not recognise
            // (CKR_TOKEN_NOT_RECOGNIZED) is P1.card-not-recognised's, not a
            // failure of the whole.
            for (CK_SLOT_ID slot : *slots) {
                if (auto k = client::key_info(m, slot))
                    f.keys.emplace_back().info = std::move(*k);
                else if (unreadable_token(k.error().rv))
                    f.slot_failures.push_back(slot_failure(m, slot, k.error().rv));
                else if (k.error().rv != CKR_TOKEN_NOT_PRESENT)
                    f.module_error = k.error().message;
            }
        } else {
            f.module_error = slots.error().message;
        }
        for (auto& k : f.keys)
            look_at_key(f, k, m);
        if (!f.keys.empty())
            look_at_p11kit_tokens(f);
    } catch (const Failure& e) {
        if (e.code == no_key && !key_spec.empty())
            throw; // the Key asked about is not there: say so, as every command does
        f.module_error = e.sentence;
        return f;
    }
    // A wrong or unreadable PIN fails the command, as it does everywhere.
    if (pin)
        log_in(ctx, f, *pin);
    return f;
}

bool loads_ukey(const Facts& f, const NssDb& db)
{
    return ukey_in(db, real_file(f.module_path), f.p11kit_registered) != UkeyIn::absent;
}

std::string key_arg(const Facts& f, const KeyFacts& k)
{
    if (f.keys.size() <= 1 && f.key_spec.empty())
        return {};
    const std::string serial = k.info.serial();
    const bool plain = !serial.empty() && serial.size() <= 32 &&
                       serial.find_first_not_of("0123456789ABCDEFabcdef-") == std::string::npos;
    return plain ? serial : std::to_string(k.info.slot);
}

std::string command(const Facts& f, const KeyFacts& k, const std::string& base)
{
    const std::string key = key_arg(f, k);
    return "`" + base + (key.empty() ? "" : " " + key) + "`";
}

std::vector<UserCert> user_certs(const KeyFacts& k)
{
    std::vector<UserCert> out;
    for (const auto& c : k.certs) {
        auto x = c.parse();
        if (!x || X509_check_ca(x.get()) != 0)
            continue;
        out.push_back(UserCert{&c, std::move(x), escape::printable(c.label)});
    }
    // Backends find objects in no set order: findings come in the same
    // order every time.
    std::sort(out.begin(), out.end(), [](const UserCert& a, const UserCert& b) {
        return std::tie(a.on_key->label, a.on_key->id) < std::tie(b.on_key->label, b.on_key->id);
    });
    return out;
}

const char* severity_name(Severity s)
{
    static constexpr const char* names[] = {"note", "warning", "problem"};
    return names[static_cast<int>(s)];
}

const char* severity_tag(Severity s)
{
    static constexpr const char* tags[] = {"NOTE", "WARNING", "PROBLEM"};
    return tags[static_cast<int>(s)];
}

void run(const Check& check, const Facts& f, std::vector<Finding>& out)
{
    if (check.on_facts)
        check.on_facts(f, out);
    for (const auto& k : f.keys) {
        if (check.on_key)
            check.on_key(f, k, out);
        if (check.on_cert)
            for (const auto& c : user_certs(k))
                check.on_cert(f, k, c, out);
    }
}

Finding finding(const Check& check, Severity severity, const KeyFacts* k, std::string what, std::string fix)
{
    return Finding{check.id, check.problem, severity, k ? k->name : std::string(), std::move(what), std::move(fix), {}, false};
}

} // namespace ukey::cli::doctor
