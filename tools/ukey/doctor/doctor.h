// ukey doctor: every problem of the users' FAQs (docs/doctor.md) looked at
// at once, the way a helpdesk would. Facts are gathered once (facts.cpp);
// each check (one file each, listed in check_list.cpp) reads them and adds
// findings: one plain sentence each, what is wrong and why, and what to do.
#pragma once

#include "auto_select.h"
#include "../nss_dbs.h"
#include "client/journal.h"
#include "client/refusal.h"
#include "client/certs.h"
#include "client/module.h"
#include "tools/common/tool_config.h"

#include <ctime>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace ukey::cli {
struct Context;
struct PinSource;
}

namespace ukey::cli::doctor {

// Ordered: the worst finding decides the exit code.
enum class Severity { note, warning, problem };
// "note", "warning", "problem" (JSON) and "NOTE", "WARNING", "PROBLEM" (text).
const char* severity_name(Severity s);
const char* severity_tag(Severity s);

struct Finding {
    std::string id;   // the check's id, e.g. "P4.user-pin-locked"
    std::string problem; // "P4"
    Severity severity = Severity::warning;
    std::string key;  // the Key it is about ("Key 'Alice' (serial 42)"), or empty
    std::string what; // what is wrong and why: one sentence
    std::string fix;  // what to do: one sentence, or empty
    // What `ukey doctor --fix` may run for it (safe fixes only): argv, with
    // "ukey" for ukey itself; empty: nothing to run.
    std::vector<std::string> remedy;
    bool remedy_needs_pin = false; // gets the PIN source of --pin-file
};

// One backend of ukey.conf, loaded on its own to see whether it works.
struct BackendFacts {
    BackendConfig config;
    bool uses_pcsc = false;  // the module talks to readers through pcscd
    std::string load_error;  // why it did not load or initialise; empty: it works
};


// A PKCS#11 module registered with p11-kit that p11-kit-proxy loads (not
// disabled for it): every program using p11-kit-proxy sees its tokens.
struct P11KitModule {
    std::string name;    // "softhsm2": its .module file's name
    std::string library; // the library, as p11-kit resolves it
    std::string file;    // the .module file it comes from, when found
    // The tokens it shows (look_at_p11kit_tokens), not escaped: only for
    // modules that are neither a backend's nor ukey's, and only when the
    // doctor looks at Keys.
    struct Token {
        std::string label, manufacturer, serial;
    };
    std::vector<Token> tokens;
};

struct Reader {
    std::string name;
    bool card = false; // a card is in it
    std::string atr;   // "3B 80 80 01 01", when a card is in it
    bool exclusive = false; // another program holds the card for itself (SCARD_STATE_EXCLUSIVE)
};

struct PcscFacts {
    bool needed = false;      // a backend uses PC/SC
    long establish = 0;       // SCardEstablishContext's result (0: pcscd answers)
    long list = 0;            // SCardListReaders' result
    std::vector<Reader> readers;
};

// One Key as ukey shows it, and what is on it (public objects only: the
// doctor never asks for a PIN).
struct KeyFacts {
    client::KeyInfo info;
    std::string name; // "Key 'Alice' (serial 42)", escaped for a terminal
    std::vector<client::CertOnKey> certs;
    std::string certs_error;
    std::optional<client::Journal> journal;
    std::string journal_error; // a journal is there but cannot be read
    std::string journal_path;
    // The CA's refusal of the last renewal or enrolment (P15), if recorded.
    std::optional<client::Refusal> refusal;
    std::string refusal_error;
    // With --pin-fd / --pin-file: logged in, the private and public keys.
    bool logged_in = false;
    std::vector<client::KeyOnKey> keys;
};

// A slot with a card whose token cannot be read: the backend's answer
// (CKR_DEVICE_ERROR, CKR_DEVICE_MEMORY, CKR_DEVICE_REMOVED,
// CKR_TOKEN_NOT_RECOGNIZED).
struct SlotFailure {
    CK_SLOT_ID slot = 0;
    std::string reader;  // the slot's description (not escaped)
    std::string backend; // ukey's name of its backend, when known
    CK_RV rv = CKR_OK;
};

// --url: what the site's TLS server asks of a client (tls_probe.cpp).
struct ServerFacts {
    std::string url;   // as given (escape before showing)
    std::string error; // it could not be asked (why, not escaped); empty: it answered
    bool asks_for_cert = false; // its handshake asked for a client certificate
    // The CAs whose certificates it accepts (its CertificateRequest); empty
    // with asks_for_cert: any.
    std::vector<client::X509NamePtr> acceptable;
    // Chromium's AutoSelectCertificateForUrls rules whose pattern covers url.
    std::vector<AutoSelectRule> auto_select;
};

struct Facts {
    std::time_t now = 0;
    std::string config_path;
    std::optional<ToolConfig> config;
    std::string config_error;
    bool config_missing = false; // there is no file at all: nothing is set up
    std::vector<BackendFacts> backends;
    PcscFacts pcsc;
    std::string module_error; // libukey-pkcs11.so did not load or initialise
    std::vector<KeyFacts> keys;
    std::string key_spec; // the KEY argument, when one Key was asked about
    bool offline = false; // --offline: no network (CRLs)
    // --fix: checks may prepare what their remedy needs (P9 fetches the
    // missing CA certificate into the state folder); without it the doctor
    // changes nothing.
    bool fixing = false;
    std::vector<NssDb> browsers; // those that exist (nss_dbs.h)
    // NssDb::dir -> `certutil -L -h all` there (the certificates it shows,
    // "TOKEN:LABEL"), for each that loads ukey's module and certutil answered.
    std::map<std::string, std::string> browser_listings;
    std::string module_path;    // ukey's module, as the tools load it
    bool p11kit_registered = false; // a p11-kit .module file names ukey's module
    std::vector<P11KitModule> p11kit_modules; // p11kit_modules.cpp
    std::string p11kit_error; // p11-kit could not read its configuration
    // From timedatectl when there is one; nullopt: unknown.
    std::optional<bool> clock_synchronised;
    std::optional<ServerFacts> server; // with --url
    std::vector<SlotFailure> slot_failures;
};

// Fills p11kit_modules (p11kit_modules.cpp).
void look_at_p11kit(Facts& f);
// Fills their tokens, for the modules that are neither a backend's nor
// ukey's (`p11-kit list-modules`, in a child with a time limit: those are
// drivers ukey knows nothing of).
void look_at_p11kit_tokens(Facts& f);

// Whether the NSS database loads ukey's module (directly, or through
// p11-kit-proxy when ukey is registered with p11-kit).
bool loads_ukey(const Facts& f, const NssDb& db);

// `pin`, when it names a source: the user PIN of the one Key looked at, to
// see its private keys too (P13).
Facts gather(Context& ctx, const std::string& key_spec, bool offline, const PinSource* pin);

// The Key's end-entity certificates (not CA certificates), parsed; those
// that do not parse are left out.
struct UserCert {
    const client::CertOnKey* on_key;
    client::X509Ptr x;
    std::string label; // escaped
};
std::vector<UserCert> user_certs(const KeyFacts& k);

// A check looks at the whole picture, at each Key, or at each end-entity
// certificate of each Key: one of the three functions is set.
struct Check {
    const char* id;      // stable: "P1.pcscd-down"
    const char* problem; // "P1" (../shared/user-problems.md)
    const char* title;   // docs/doctor.md: what the check looks for
    const char* cause;   // docs/doctor.md: why it happens
    const char* fix;     // docs/doctor.md: what to do
    void (*on_facts)(const Facts&, std::vector<Finding>&);
    void (*on_key)(const Facts&, const KeyFacts&, std::vector<Finding>&);
    void (*on_cert)(const Facts&, const KeyFacts&, const UserCert&, std::vector<Finding>&);
};

// Runs one check over the facts.
void run(const Check& c, const Facts& f, std::vector<Finding>& out);

// A check in a file of its own: the macro names it, states its docs, and
// opens its function, whose body follows it (parameters f, k, c, out).
#define UKEY_DOCTOR_CHECK(name, id, problem, title, cause, fix)                                      \
    static void name##_run(const Facts& f, std::vector<Finding>& out);                                \
    extern const Check name;                                                                          \
    const Check name{id, problem, title, cause, fix, name##_run, nullptr, nullptr};                   \
    static void name##_run([[maybe_unused]] const Facts& f, std::vector<Finding>& out)
#define UKEY_DOCTOR_KEY_CHECK(name, id, problem, title, cause, fix)                                  \
    static void name##_run(const Facts& f, const KeyFacts& k, std::vector<Finding>& out);             \
    extern const Check name;                                                                          \
    const Check name{id, problem, title, cause, fix, nullptr, name##_run, nullptr};                   \
    static void name##_run([[maybe_unused]] const Facts& f, const KeyFacts& k, std::vector<Finding>& out)
#define UKEY_DOCTOR_CERT_CHECK(name, id, problem, title, cause, fix)                                 \
    static void name##_run(const Facts& f, const KeyFacts& k, const UserCert& c, std::vector<Finding>& out); \
    extern const Check name;                                                                          \
    const Check name{id, problem, title, cause, fix, nullptr, nullptr, name##_run};                   \
    static void name##_run([[maybe_unused]] const Facts& f, const KeyFacts& k, const UserCert& c,     \
                           std::vector<Finding>& out)

// Every check, in the order they run (check_list.cpp).
std::span<const Check* const> checks();

// An initialised Key whose PIN counts ukey can trust (not damaged).
inline bool counts_usable(const KeyFacts& k)
{
    return k.info.initialized() && !(k.info.pin && (k.info.pin->flags & UKEY_PIN_STATE_DAMAGED));
}

// How a finding names the command for `k`: "`ukey pin unlock`" when it is
// the only Key, else with its serial (or slot) appended (key_arg).
std::string command(const Facts& f, const KeyFacts& k, const std::string& base);
std::string key_arg(const Facts& f, const KeyFacts& k); // "" for the only Key


// A finding of `check` about key `k` (or none): its id filled in.
Finding finding(const Check& check, Severity severity, const KeyFacts* k, std::string what, std::string fix);

} // namespace ukey::cli::doctor
