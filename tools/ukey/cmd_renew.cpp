// ukey enroll | renew | cert superseded: certificates issued and renewed on
// the Key over SCEP (RFC 8894), crash-safe (docs/renewal.md).
//
// ukey enroll KEY --ca URL --ca-fingerprint HEX --subject DN --challenge-fd N|--challenge-file F
//                 [--type rsa2048|rsa3072|rsa4096] [--label L] [--timeout S]
// ukey renew KEY [--cert ID] [--rekey|--same-key] [--keep-old]
//                [--ca URL --ca-fingerprint HEX | --ca-name NAME] [--challenge-fd N|--challenge-file F]
//                [--timeout S] [--resume] [--unattended]
// ukey cert superseded list KEY | clean KEY [--yes]
//
// Every enrolment and renewal keeps a journal in <state_dir>/renewal/ of its
// steps: started, key_generated, request_sent, cert_received, cert_written,
// old_retired. A run that finds a journal for the Key first finishes it
// (cert_received or later: the verified certificate is written and the old
// objects retired) or rolls it back (earlier: the new key, labelled with the
// journal's pending label, is deleted), so the Key always keeps a working
// key+certificate pair. `--resume` does only that.
//
// Test-only: UKEY_TEST_CRASH_AFTER=<step name or number 1-6> makes the
// process SIGKILL itself right after the journal records that step.
//
// JSON output (--json), snake_case, stable:
//   {"operation": "enroll" | "renew",
//    "state": "completed" | "rolled_back" | "nothing_to_do",
//    "resumed": bool (a journal left by an earlier run was finished or rolled back),
//    "key_id": "hex" | null (the new key pair's CKA_ID),
//    "certificate": cert | null (the new certificate: label, id, subject, issuer,
//        serial, not_before, not_after, days_left),
//    "old": cert | null (the renewed certificate),
//    "old_action": "deleted" | "kept_superseded" | "none",
//    "ca": {"url": "...", "name": "..." | null} | null,
//    "steps": ["started", ...] (the journal's steps, in order)}
//
// ukey cert superseded list KEY    {"superseded": [cert, ...]}
// ukey cert superseded clean KEY   {"deleted": [cert, ...], "keys_deleted": N}
#include "client/certs.h"
#include "cli.h"
#include "tool_config.h"
#include "client/journal.h"
#include "client/messages.h"
#include "client/scep.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <iostream>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>

namespace ukey::cli {

namespace {

using json = nlohmann::json;

const char* const steps[] = {"started", "key_generated", "request_sent", "cert_received", "cert_written",
                             "old_retired"};
constexpr const char* superseded_prefix = "superseded ";

int step_index(const std::string& step)
{
    for (int i = 0; i < 6; ++i)
        if (step == steps[i])
            return i;
    return -1;
}

// The crash switch of the tests (docs/renewal.md, "Testing").
void crash_point(const std::string& step)
{
    const char* want = secure_getenv("UKEY_TEST_CRASH_AFTER");
    if (want && (step == want || std::to_string(step_index(step) + 1) == want))
        raise(SIGKILL);
}

std::string now_iso()
{
    return client::iso8601(std::time(nullptr));
}

std::string b64(const client::Bytes& b)
{
    std::string out(4 * ((b.size() + 2) / 3) + 1, '\0');
    int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), b.data(), static_cast<int>(b.size()));
    out.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
    return out;
}

client::Bytes unb64(const std::string& s)
{
    client::Bytes out(s.size() / 4 * 3 + 3);
    int n = EVP_DecodeBlock(out.data(), reinterpret_cast<const unsigned char*>(s.data()), static_cast<int>(s.size()));
    if (n < 0)
        return {};
    std::size_t len = static_cast<std::size_t>(n);
    for (std::size_t i = s.size(); i > 0 && s[i - 1] == '='; --i)
        --len;
    out.resize(len);
    return out;
}

json cert_summary(X509* x, const std::string& label, const client::Bytes& id)
{
    client::CertDetails d = client::cert_details(x);
    const std::time_t now = std::time(nullptr);
    return {{"label", label},
            {"id", client::to_hex(id)},
            {"subject", d.subject},
            {"issuer", d.issuer},
            {"serial", d.serial},
            {"not_before", d.not_before ? json(client::iso8601(*d.not_before)) : json(nullptr)},
            {"not_after", d.not_after ? json(client::iso8601(*d.not_after)) : json(nullptr)},
            {"days_left", d.not_after ? json(client::days_until(*d.not_after, now)) : json(nullptr)}};
}

ToolConfig load_cfg()
{
    auto cfg = load_tool_config(config_path());
    if (!cfg)
        throw Failure(setup, cfg.error().message);
    return std::move(*cfg);
}

// An unattended secret file (the PIN, a challenge): root's, a regular
// file, 0600 or stricter.
void check_secret_file(const std::filesystem::path& path, const std::string& what)
{
    if (path.empty())
        throw Failure(setup, "--unattended needs the user PIN from [renewal] pin_file in the config, and none is "
                             "set (docs/renewal.md)");
    struct stat st;
    if (lstat(path.c_str(), &st) != 0)
        throw Failure(setup, "the renewal " + what + " file " + path.string() + " cannot be read: " + std::strerror(errno));
    if (!S_ISREG(st.st_mode))
        throw Failure(setup, "the renewal " + what + " file " + path.string() + " is not a regular file (no symlinks)");
    if (st.st_uid != 0 || (st.st_mode & 077))
        throw Failure(setup, "the renewal " + what + " file " + path.string() +
                                 " must be owned by root with mode 0600 (chown root:root; chmod 600): refused");
}

// --- objects on the Key ---------------------------------------------------------

std::vector<CK_OBJECT_HANDLE> objects_labelled(const client::Session& s, const std::string& label)
{
    return must(s.find({{CKA_LABEL, const_cast<char*>(label.data()), label.size()}}));
}

void set_label(const client::Session& s, CK_OBJECT_HANDLE h, const std::string& label)
{
    CK_ATTRIBUTE a{CKA_LABEL, const_cast<char*>(label.data()), label.size()};
    check(s.f()->C_SetAttributeValue(s.handle(), h, &a, 1), "relabelling an object on the Key");
}

CK_OBJECT_HANDLE write_cert(const client::Session& s, X509* x, const client::Bytes& id, const std::string& label,
                            CK_ULONG category)
{
    CK_OBJECT_CLASS cls = CKO_CERTIFICATE;
    CK_CERTIFICATE_TYPE type = CKC_X_509;
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    client::Bytes der = client::to_der(x), subject = client::name_der(X509_get_subject_name(x)),
                  issuer = client::name_der(X509_get_issuer_name(x)), serial = client::serial_der(x);
    std::vector<CK_ATTRIBUTE> t = {{CKA_CLASS, &cls, sizeof cls},
                                   {CKA_CERTIFICATE_TYPE, &type, sizeof type},
                                   {CKA_TOKEN, &yes, sizeof yes},
                                   {CKA_PRIVATE, &no, sizeof no},
                                   {CKA_LABEL, const_cast<char*>(label.data()), label.size()},
                                   {CKA_VALUE, der.data(), der.size()},
                                   {CKA_SUBJECT, subject.data(), subject.size()},
                                   {CKA_ISSUER, issuer.data(), issuer.size()},
                                   {CKA_SERIAL_NUMBER, serial.data(), serial.size()},
                                   {CKA_CERTIFICATE_CATEGORY, &category, sizeof category}};
    client::Bytes idc = id;
    if (!idc.empty())
        t.push_back({CKA_ID, idc.data(), idc.size()});
    CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
    check(s.f()->C_CreateObject(s.handle(), t.data(), t.size(), &h), "writing the certificate to the Key");
    return h;
}

const client::CertOnKey* cert_with_der(const std::vector<client::CertOnKey>& certs, const client::Bytes& der)
{
    for (const auto& c : certs)
        if (c.der == der)
            return &c;
    return nullptr;
}

// The same attributes, in any order and string type: some CAs (Go's
// crypto/x509, hence scepserver) re-encode the subject in their own RDN order.
bool same_attributes(const X509_NAME* a, const X509_NAME* b)
{
    auto entries = [](const X509_NAME* n) {
        std::vector<std::pair<int, std::string>> out;
        for (int i = 0; i < X509_NAME_entry_count(n); ++i) {
            const X509_NAME_ENTRY* e = X509_NAME_get_entry(n, i);
            unsigned char* utf8 = nullptr;
            int len = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(e));
            out.emplace_back(OBJ_obj2nid(X509_NAME_ENTRY_get_object(e)),
                             len >= 0 ? std::string(reinterpret_cast<char*>(utf8), static_cast<std::size_t>(len)) : "");
            OPENSSL_free(utf8);
        }
        std::sort(out.begin(), out.end());
        return out;
    };
    return entries(a) == entries(b);
}

// --- one enrolment or renewal ---------------------------------------------------

struct Args {
    std::string spec, cert_id, ca_url, ca_fingerprint, ca_name, subject, type = "rsa2048", label;
    bool rekey = false, same_key = false, keep_old = false, resume = false, unattended = false;
    int timeout = 0;
    PinSource pin, challenge;
};

struct Outcome {
    std::string state = "nothing_to_do";
    bool resumed = false;
    json certificate = nullptr, old = nullptr, ca = nullptr, key_id = nullptr;
    std::string old_action = "none";
    json steps = json::array();
};

class Run {
public:
    Run(Context& ctx, const client::Session& s, std::filesystem::path path) : ctx_(ctx), s_(s), path_(std::move(path)) {}

    json j;

    void record(const std::string& step)
    {
        j["step"] = step;
        j["steps"].push_back({{"step", step}, {"time", now_iso()}});
        auto r = client::save_journal(path_, json_text(j) + "\n");
        if (!r)
            throw Failure(failure, r.error().message);
        crash_point(step);
    }
    void finish()
    {
        auto r = client::remove_journal(path_);
        if (!r)
            throw Failure(failure, r.error().message);
    }
    json step_names() const
    {
        json out = json::array();
        for (const auto& s : j.value("steps", json::array()))
            out.push_back(s["step"]);
        return out;
    }

    // Before the certificate is in: the new key (pending label) goes.
    void roll_back()
    {
        const std::string pending = j.value("pending_label", "");
        if (!pending.empty() && j.value("mode", "rekey") == "rekey")
            for (CK_OBJECT_HANDLE h : objects_labelled(s_, pending))
                check(s_.f()->C_DestroyObject(s_.handle(), h), "deleting the unfinished new key");
        finish();
    }

    // A key ID the journal holds in hex; a journal edited or damaged there
    // is a clear error, never undefined behaviour.
    client::Bytes journal_hex(const json& v, const char* field) const
    {
        std::optional<client::Bytes> b;
        if (v.is_string())
            b = client::from_hex(v.get<std::string>());
        if (!b)
            throw Failure(failure, "the renewal journal " + path_.string() + " is damaged: its " + field +
                                       " is not a key ID in hex");
        return *b;
    }

    // From cert_received on: write, verify, retire.
    void roll_forward(Outcome& out)
    {
        client::Bytes der = unb64(j["cert"].get<std::string>());
        client::X509Ptr x = client::parse_der(der);
        client::Bytes new_id = journal_hex(j["new_id"], "new_id");
        const std::string label = j["final_label"].get<std::string>();
        const std::string pending = j.value("pending_label", "");
        if (!x)
            throw Failure(failure, "the renewal journal " + path_.string() + " holds no readable certificate");
        if (step_index(j["step"]) < step_index("cert_written")) {
            auto certs = must(client::read_certificates(s_));
            if (!cert_with_der(certs, der))
                write_cert(s_, x.get(), new_id, label, 1);
            for (const auto& c : j.value("chain", json::array())) {
                client::Bytes cd = unb64(c.get<std::string>());
                client::X509Ptr cx = client::parse_der(cd);
                if (cx && !cert_with_der(certs, cd)) {
                    client::CertDetails d = client::cert_details(cx.get());
                    write_cert(s_, cx.get(), d.subject_key_id, d.subject_cn.empty() ? d.subject : d.subject_cn, 2);
                }
            }
            if (!pending.empty())
                for (CK_OBJECT_HANDLE h : objects_labelled(s_, pending))
                    set_label(s_, h, label);
            record("cert_written");
        }
        if (step_index(j["step"]) < step_index("old_retired")) {
            verify_on_key(der, new_id);
            retire(out);
            record("old_retired");
        }
        out.certificate = cert_summary(x.get(), label, new_id);
        out.key_id = client::to_hex(new_id);
        finish();
    }

    // The new pair on the Key works: its certificate is there, a private key
    // with its id has the certificate's public key, it chains to the pinned
    // CA and is valid now.
    void verify_on_key(const client::Bytes& der, const client::Bytes& id)
    {
        auto certs = must(client::read_certificates(s_));
        const client::CertOnKey* c = cert_with_der(certs, der);
        if (!c || c->id != id)
            throw Failure(key_error, "the new certificate is not on the Key with the new key's id: the old "
                                     "certificate was kept; run `ukey renew --resume` again");
        client::X509Ptr x = c->parse();
        auto keys = must(client::read_keys(s_));
        bool match = false;
        for (const auto& k : keys)
            if (k.is_private() && k.id == id && k.public_key &&
                client::same_public_key(k.public_key.get(), X509_get0_pubkey(x.get())))
                match = true;
        if (!match)
            throw Failure(key_error, "no private key on the Key matches the new certificate: the old certificate "
                                     "was kept");
        std::string why = verify_cert(x.get(), nullptr);
        if (!why.empty())
            throw Failure(key_error, "the new certificate on the Key does not verify (" + why +
                                         "): the old certificate was kept");
    }

    // "" or why `x` is not acceptable: chains to the journal's CA, valid
    // now, and (if given) has the expected subject.
    std::string verify_cert(X509* x, const X509_NAME* subject) const
    {
        client::X509Ptr ca = client::parse_der(unb64(j["ca_cert"].get<std::string>()));
        if (!ca)
            return "the journal holds no CA certificate";
        std::string why = client::chain_error(x, ca.get());
        if (!why.empty())
            return why;
        if (subject && !same_attributes(X509_get_subject_name(x), subject))
            return "its subject " + client::name_text(X509_get_subject_name(x)) + " is not the one requested";
        return {};
    }

    void retire(Outcome& out)
    {
        if (j["old"].is_null())
            return;
        const json& old = j["old"];
        client::Bytes old_der = unb64(old["cert"].get<std::string>());
        client::Bytes old_id = journal_hex(old["id"], "old.id");
        const bool keep = j.value("keep_old", false);
        const bool rekey = j.value("mode", "rekey") == "rekey";
        const std::string new_label =
            superseded_prefix + now_iso().substr(0, 10) + ": " + old["label"].get<std::string>();
        auto certs = must(client::read_certificates(s_));
        if (const client::CertOnKey* c = cert_with_der(certs, old_der)) {
            if (keep)
                set_label(s_, c->handle, new_label);
            else
                check(s_.f()->C_DestroyObject(s_.handle(), c->handle), "deleting the old certificate");
        }
        if (rekey && old_id != journal_hex(j["new_id"], "new_id")) {
            for (const auto& k : must(client::read_keys(s_))) {
                if (k.id != old_id)
                    continue;
                if (keep)
                    set_label(s_, k.handle, new_label);
                else
                    check(s_.f()->C_DestroyObject(s_.handle(), k.handle), "deleting the old key");
            }
        }
        out.old_action = keep ? "kept_superseded" : "deleted";
    }

private:
    Context& ctx_;
    const client::Session& s_;
    std::filesystem::path path_;
};

// Finishes or rolls back a journal left for this Key; false if none.
bool resume(Context& ctx, const client::Session& s, const std::filesystem::path& path, Outcome& out)
{
    auto text = client::load_journal(path);
    if (!text)
        throw Failure(failure, text.error().message);
    if (!*text)
        return false;
    Run run(ctx, s, path);
    run.j = json::parse(**text, nullptr, false);
    if (!run.j.is_object() || !run.j.contains("step") || step_index(run.j.value("step", "")) < 0)
        throw Failure(failure, "the renewal journal " + path.string() +
                                   " is damaged: check the Key with `ukey cert list` and `ukey key list`, then "
                                   "remove the file");
    out.resumed = true;
    out.old = run.j.value("old_summary", json(nullptr));
    out.ca = {{"url", run.j.value("ca_url", "")}, {"name", run.j.value("ca_name", json(nullptr))}};
    const std::string step = run.j["step"];
    if (step_index(step) < step_index("cert_received")) {
        ctx.progress("An unfinished renewal (stopped after '" + step + "') is rolled back...\n");
        out.steps = run.step_names();
        run.roll_back();
        out.state = "rolled_back";
    } else {
        ctx.progress("An unfinished renewal (stopped after '" + step + "') is completed...\n");
        run.roll_forward(out);
        out.steps = run.step_names();
        out.state = "completed";
    }
    return true;
}

struct CaChoice {
    std::string url, fingerprint;
    std::filesystem::path challenge_file;
    json name = nullptr;
    bool rekey = true, keep_old = false;
    int timeout = 60;
};

// The old certificate: --cert, else the only user certificate with a private key.
const client::CertOnKey& old_cert(const std::vector<client::CertOnKey>& certs,
                                  const std::vector<client::KeyOnKey>& keys, const std::string& id_text)
{
    std::optional<client::Bytes> id;
    if (!id_text.empty())
        id = parse_id(id_text, "--cert");
    std::vector<const client::CertOnKey*> found;
    for (const auto& c : certs) {
        if (c.label.rfind(superseded_prefix, 0) == 0 || c.category == 2 || c.id.empty())
            continue;
        if (id && c.id != *id)
            continue;
        bool has_key = std::any_of(keys.begin(), keys.end(), [&](const auto& k) { return k.is_private() && k.id == c.id; });
        if (has_key)
            found.push_back(&c);
    }
    if (found.empty())
        throw Failure(not_found, id ? "no certificate with a key on the Key has the id " + client::to_hex(*id) +
                                          ": `ukey cert list` shows them"
                                    : "no certificate with its key is on the Key to renew: enrol one with `ukey enroll`");
    if (found.size() > 1) {
        // Several certificates of one key: the newest is meant.
        if (id) {
            std::sort(found.begin(), found.end(), [](auto* a, auto* b) {
                auto xa = a->parse(), xb = b->parse();
                return client::not_after(xa.get()).value_or(0) > client::not_after(xb.get()).value_or(0);
            });
            return *found[0];
        }
        throw Failure(ambiguous, std::to_string(found.size()) +
                                     " certificates with keys are on the Key: name one with --cert ID (`ukey cert list`)");
    }
    return *found[0];
}

CK_OBJECT_HANDLE private_key_with_id(const client::Session& s, const client::Bytes& id)
{
    CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
    client::Bytes idc = id;
    auto found = must(s.find({{CKA_CLASS, &cls, sizeof cls}, {CKA_ID, idc.data(), idc.size()}}));
    if (found.empty())
        throw Failure(not_found, "no private key on the Key has the id " + client::to_hex(id));
    return found[0];
}

// An RSA key pair made on the Key with `label`; returns (private handle, public key).
std::pair<CK_OBJECT_HANDLE, client::PKeyPtr> generate_rsa(Context& ctx, const client::Session& s, CK_ULONG bits,
                                                         const std::string& label)
{
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    CK_BYTE exponent[] = {0x01, 0x00, 0x01};
    std::string l = label;
    std::vector<CK_ATTRIBUTE> pub = {{CKA_TOKEN, &yes, sizeof yes},        {CKA_PRIVATE, &no, sizeof no},
                                     {CKA_VERIFY, &yes, sizeof yes},       {CKA_ENCRYPT, &yes, sizeof yes},
                                     {CKA_MODULUS_BITS, &bits, sizeof bits}, {CKA_PUBLIC_EXPONENT, exponent, sizeof exponent},
                                     {CKA_LABEL, l.data(), l.size()}};
    std::vector<CK_ATTRIBUTE> priv = {{CKA_TOKEN, &yes, sizeof yes},     {CKA_PRIVATE, &yes, sizeof yes},
                                      {CKA_SENSITIVE, &yes, sizeof yes}, {CKA_EXTRACTABLE, &no, sizeof no},
                                      {CKA_SIGN, &yes, sizeof yes},      {CKA_DECRYPT, &yes, sizeof yes},
                                      {CKA_LABEL, l.data(), l.size()}};
    CK_MECHANISM mech{CKM_RSA_PKCS_KEY_PAIR_GEN, nullptr, 0};
    CK_OBJECT_HANDLE hpub = CK_INVALID_HANDLE, hpriv = CK_INVALID_HANDLE;
    ctx.progress("Generating an RSA-" + std::to_string(bits) + " key pair on the Key...\n");
    check(s.f()->C_GenerateKeyPair(s.handle(), &mech, pub.data(), pub.size(), priv.data(), priv.size(), &hpub, &hpriv),
          "generating the new key pair");
    client::PKeyPtr pk;
    for (auto& o : must(client::read_keys(s)))
        if (o.handle == hpub)
            pk = std::move(o.public_key);
    if (!pk)
        throw Failure(key_error, "the Key generated a key pair but its public key is unreadable");
    client::Bytes id = client::key_identifier(pk.get());
    CK_ATTRIBUTE set{CKA_ID, id.data(), id.size()};
    check(s.f()->C_SetAttributeValue(s.handle(), hpriv, &set, 1), "setting the new key's id");
    check(s.f()->C_SetAttributeValue(s.handle(), hpub, &set, 1), "setting the new key's id");
    return {hpriv, std::move(pk)};
}

void add_attr_challenge(X509_REQ* req, const client::Secret& challenge)
{
    if (challenge.empty())
        return;
    if (X509_REQ_add1_attr_by_NID(req, NID_pkcs9_challengePassword, MBSTRING_UTF8, challenge.data(),
                                  static_cast<int>(challenge.size())) != 1)
        throw Failure(failure, "OpenSSL cannot add the challenge password (" + client::openssl_errors() + ")");
}

client::Secret read_challenge(const PinSource& src, bool required)
{
    if (src.fd < 0 && src.file.empty()) {
        if (required)
            return read_pin(src, "challenge password");
        return {};
    }
    return read_pin(src, "challenge password");
}

// Enrolment (no old certificate) or renewal, from the start.
void fresh(Context& ctx, const client::Session& s, const client::KeyInfo& k, const std::filesystem::path& path,
           Args& a, bool enroll, const CaChoice& ca, Outcome& out)
{
    // Everything that needs no change on the Key first.
    auto certs = must(client::read_certificates(s));
    auto keys = must(client::read_keys(s));
    const client::CertOnKey* oldc = enroll ? nullptr : &old_cert(certs, keys, a.cert_id);
    client::X509Ptr oldx{nullptr, X509_free};
    client::X509NamePtr subject;
    CK_ULONG bits = 2048;
    CK_OBJECT_HANDLE old_priv = CK_INVALID_HANDLE;
    client::PKeyPtr old_pub;
    if (oldc) {
        oldx = oldc->parse();
        if (!oldx)
            throw Failure(bad_input, "the certificate '" + oldc->label + "' on the Key is unreadable: it cannot be renewed");
        subject.reset(X509_NAME_dup(X509_get_subject_name(oldx.get())));
        old_priv = private_key_with_id(s, oldc->id);
        for (const auto& kk : keys)
            if (kk.handle == old_priv && kk.bits)
                bits = static_cast<CK_ULONG>(kk.bits);
        old_pub.reset(X509_get_pubkey(oldx.get()));
        if (EVP_PKEY_get_base_id(old_pub.get()) != EVP_PKEY_RSA)
            throw Failure(bad_input, "the certificate '" + oldc->label +
                                         "' has no RSA key: SCEP renewal needs RSA (the CA encrypts its answer to the "
                                         "key); renew it offline with `ukey csr` and `ukey cert write`");
        out.old = cert_summary(oldx.get(), oldc->label, oldc->id);
    } else {
        auto name = client::parse_name(a.subject);
        if (!name)
            throw Failure(bad_input, "--subject '" + a.subject + "' is not a name: " + name.error().message);
        subject = std::move(*name);
        bits = a.type == "rsa4096" ? 4096 : a.type == "rsa3072" ? 3072 : 2048;
    }
    const bool rekey = enroll || (a.same_key ? false : a.rekey ? true : ca.rekey);
    PinSource challenge_src = a.challenge;
    if (challenge_src.fd < 0 && challenge_src.file.empty() && !ca.challenge_file.empty()) {
        if (a.unattended)
            check_secret_file(ca.challenge_file, "challenge");
        challenge_src.file = ca.challenge_file.string();
    }
    client::Secret challenge = read_challenge(challenge_src, enroll && !a.unattended);

    client::ScepClient scep(ca.url, std::chrono::seconds(ca.timeout));
    ctx.progress("Asking the CA at " + ca.url + "...\n");
    auto caps = scep.get_caps();
    if (!caps)
        throw Failure(ca_error, caps.error().message);
    if (auto got = scep.get_ca(ca.fingerprint); !got)
        throw Failure(ca_error, got.error().message);
    const bool renewal_req = !enroll && caps->renewal;

    const std::string final_label =
        oldc ? oldc->label : !a.label.empty() ? a.label : client::common_name(subject.get());
    Run run(ctx, s, path);
    client::Bytes rnd(6);
    RAND_bytes(rnd.data(), static_cast<int>(rnd.size()));
    run.j = {{"version", 1},
             {"operation", enroll ? "enroll" : "renew"},
             {"key", client::key_identity(k.backend_name(), k.manufacturer(), k.model(), k.serial())},
             {"key_label", k.label()},
             {"ca_url", ca.url},
             {"ca_name", ca.name},
             {"ca_cert", b64(client::to_der(scep.ca()))},
             {"mode", rekey ? "rekey" : "same-key"},
             {"keep_old", a.keep_old || ca.keep_old},
             {"pending_label", "ukey-renewal-pending-" + client::to_hex(rnd)},
             {"final_label", final_label},
             {"old", nullptr},
             {"old_summary", out.old},
             {"steps", json::array()}};
    if (oldc)
        run.j["old"] = {{"id", client::to_hex(oldc->id)}, {"label", oldc->label}, {"cert", b64(oldc->der)}};
    out.ca = {{"url", ca.url}, {"name", ca.name}};
    run.record("started");

    // From here on a failure before the certificate is in rolls back.
    CK_OBJECT_HANDLE new_priv = old_priv;
    client::PKeyPtr new_pub;
    client::Bytes new_id;
    try {
        if (rekey) {
            auto [h, pk] = generate_rsa(ctx, s, bits, run.j["pending_label"]);
            new_priv = h;
            new_pub = std::move(pk);
            new_id = client::key_identifier(new_pub.get());
        } else {
            EVP_PKEY_up_ref(old_pub.get());
            new_pub.reset(old_pub.get());
            new_id = oldc->id;
        }
        run.j["new_id"] = client::to_hex(new_id);
        run.record("key_generated");

        auto new_key = client::onkey_rsa_key(s, new_priv, new_pub.get());
        if (!new_key)
            throw Failure(failure, new_key.error().message);
        // The request, signed by the new key.
        client::X509ReqPtr req(X509_REQ_new());
        X509_REQ_set_version(req.get(), X509_REQ_VERSION_1);
        X509_REQ_set_subject_name(req.get(), subject.get());
        X509_REQ_set_pubkey(req.get(), new_pub.get());
        add_attr_challenge(req.get(), challenge);
        if (oldx) {
            // The old certificate's alternative names go along.
            if (auto* san = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(oldx.get(), NID_subject_alt_name, nullptr, nullptr))) {
                STACK_OF(X509_EXTENSION)* exts = sk_X509_EXTENSION_new_null();
                X509V3_add1_i2d(&exts, NID_subject_alt_name, san, 0, X509V3_ADD_DEFAULT);
                X509_REQ_add_extensions(req.get(), exts);
                sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
                GENERAL_NAMES_free(san);
            }
        }
        if (X509_REQ_sign(req.get(), new_key->get(), EVP_sha256()) <= 0)
            throw Failure(key_error, "signing the request on the Key failed (" + client::openssl_errors() + ")");
        challenge.wipe();
        client::Bytes csr = client::to_der(req.get());

        // The pkiMessage's signer: the old certificate and key for a renewal,
        // a throw-away self-signed certificate of the new key for enrolment.
        client::X509Ptr signer_cert{nullptr, X509_free};
        client::PKeyPtr signer_key;
        if (oldx) {
            X509_up_ref(oldx.get());
            signer_cert.reset(oldx.get());
            auto ok = client::onkey_rsa_key(s, old_priv, old_pub.get());
            if (!ok)
                throw Failure(failure, ok.error().message);
            signer_key = std::move(*ok);
        } else {
            auto ss = client::self_signed(new_pub.get(), new_key->get(), subject.get());
            if (!ss)
                throw Failure(key_error, ss.error().message);
            signer_cert = std::move(*ss);
            EVP_PKEY_up_ref(new_key->get());
            signer_key.reset(new_key->get());
        }
        const std::string txid = client::transaction_id_for(new_pub.get());
        run.j["transaction_id"] = txid;
        ctx.progress("Sending the request to the CA...\n");
        auto reply = scep.pki_operation(renewal_req ? client::ScepMessage::RenewalReq : client::ScepMessage::PKCSReq,
                                        csr, txid, signer_cert.get(), signer_key.get(), *caps);
        if (!reply)
            throw Failure(ca_error, reply.error().message);
        run.record("request_sent");
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(ca.timeout);
        int wait_s = 1;
        while (reply->status == client::ScepStatus::pending) {
            const auto left = std::chrono::duration_cast<std::chrono::seconds>(deadline - std::chrono::steady_clock::now());
            wait_s = static_cast<int>(std::min<long>(wait_s, left.count()));
            if (wait_s <= 0)
                throw Failure(ca_error, "the CA has not issued the certificate within " + std::to_string(ca.timeout) +
                                            " s (PENDING: it may wait for an operator): the new key was removed; run "
                                            "`ukey renew` again once the CA has approved it, or raise --timeout");
            ctx.progress("The CA says PENDING; asking again in " + std::to_string(wait_s) + " s...\n");
            std::this_thread::sleep_for(std::chrono::seconds(wait_s));
            wait_s = std::min(wait_s * 2, 30);
            client::Bytes ias = client::issuer_and_subject(X509_get_subject_name(scep.ca()), subject.get());
            reply = scep.pki_operation(client::ScepMessage::CertPoll, ias, txid, signer_cert.get(), signer_key.get(),
                                       *caps);
            if (!reply)
                throw Failure(ca_error, reply.error().message);
        }
        if (reply->status == client::ScepStatus::failure)
            throw Failure(ca_error, "the CA refused the request: " + reply->fail_text);

        // The new certificate: for the new key, chained to the pinned CA,
        // valid now, with the subject asked for.
        client::X509Ptr issued{nullptr, X509_free};
        for (auto& x : reply->certs)
            if (!issued && client::same_public_key(X509_get0_pubkey(x.get()), new_pub.get())) {
                X509_up_ref(x.get());
                issued.reset(x.get());
            }
        if (!issued)
            throw Failure(ca_error, "the CA sent a certificate for another key (" +
                                        client::name_text(X509_get_subject_name(reply->certs[0].get())) +
                                        "), not for the new key: it was not written");
        std::string why = run.verify_cert(issued.get(), subject.get());
        if (!why.empty())
            throw Failure(ca_error, "the CA's certificate " + client::name_text(X509_get_subject_name(issued.get())) +
                                        " is not acceptable (" + why + "): it was not written");
        run.j["cert"] = b64(client::to_der(issued.get()));
        json chain = json::array();
        chain.push_back(run.j["ca_cert"]);
        run.j["chain"] = chain;
        run.record("cert_received");
    } catch (const Failure& f) {
        // Nothing is written yet: the Key goes back to how it was.
        std::string state;
        try {
            run.roll_back();
            state = "; nothing on the Key was changed";
        } catch (const Failure& g) {
            state = std::string("; the new key could not be removed (") + g.what() +
                    "): the next `ukey renew` removes it";
        }
        throw Failure(f.code, f.what() + state, f.rv);
    }
    try {
        run.roll_forward(out);
    } catch (const Failure& f) {
        throw Failure(incomplete, f.what() + std::string("; the renewal stopped after '") +
                                      run.j.value("step", "") + "' and the old certificate still works: run `ukey renew "
                                      "--resume` (with the Key present) to finish it",
                      f.rv);
    }
    out.steps = run.step_names();
    out.state = "completed";
}

CaChoice choose_ca(const ToolConfig& cfg, const Args& a, const client::KeyInfo& k, const std::string& issuer, bool enroll)
{
    CaChoice c;
    const RenewalCa* rc = nullptr;
    if (!a.ca_name.empty()) {
        for (const auto& x : cfg.renewal.cas)
            if (x.name == a.ca_name)
                rc = &x;
        if (!rc)
            throw Failure(usage, "no [[renewal.ca]] is named '" + a.ca_name + "' in " + cfg.source.string());
    } else if (a.ca_url.empty()) {
        rc = renewal_ca_for(cfg, k.label(), k.serial(), issuer);
        if (!rc)
            throw Failure(usage, std::string("name the CA: --ca URL --ca-fingerprint HEX, or a [[renewal.ca]] in the "
                                             "config that serves this Key") +
                                     (enroll ? "" : " and issuer"));
    }
    if (rc) {
        c.url = rc->url;
        c.fingerprint = rc->fingerprint;
        c.name = rc->name;
        c.rekey = rc->rekey;
        c.keep_old = rc->keep_old;
        c.challenge_file = rc->challenge_file;
        c.timeout = static_cast<int>(rc->timeout_s ? rc->timeout_s : cfg.renewal.timeout_s);
    } else {
        if (a.ca_fingerprint.empty())
            throw Failure(usage, "--ca needs --ca-fingerprint: the SHA-256 of the CA certificate (`openssl x509 "
                                 "-noout -fingerprint -sha256`), checked before anything is sent");
        c.url = a.ca_url;
        c.fingerprint = a.ca_fingerprint;
        c.timeout = static_cast<int>(cfg.renewal.timeout_s);
    }
    if (a.timeout > 0)
        c.timeout = a.timeout;
    return c;
}

void run_cmd(Context& ctx, Args& a, bool enroll)
{
    if (a.rekey && a.same_key)
        throw Failure(usage, "--rekey and --same-key exclude each other");
    ToolConfig cfg = load_cfg();
    client::KeyInfo k = select_key(ctx, a.spec);
    const auto path = client::journal_path(
        cfg.state_dir, client::key_identity(k.backend_name(), k.manufacturer(), k.model(), k.serial()));
    PinSource pin = a.pin;
    if (a.unattended) {
        check_secret_file(cfg.renewal.pin_file, "PIN");
        pin = PinSource{-1, cfg.renewal.pin_file.string()};
    }
    // With --resume and no journal there is nothing to ask a PIN for.
    if (a.resume) {
        auto text = client::load_journal(path);
        if (text && !*text) {
            Outcome none;
            json doc = {{"operation", "renew"}, {"state", "nothing_to_do"}, {"resumed", false}, {"key_id", nullptr},
                        {"certificate", nullptr}, {"old", nullptr}, {"old_action", "none"}, {"ca", nullptr},
                        {"steps", json::array()}};
            ctx.print(doc, [&] { std::cout << "No unfinished renewal for Key '" << shown(k.label()) << "'.\n"; });
            return;
        }
    }
    auto s = user_session(ctx, k, pin, true);
    Outcome out;
    bool had = resume(ctx, *s, path, out);
    if (!a.resume && !(had && out.state == "completed")) {
        Outcome fresh_out;
        std::string issuer;
        if (!enroll) {
            auto certs = must(client::read_certificates(*s));
            auto keys = must(client::read_keys(*s));
            auto x = old_cert(certs, keys, a.cert_id).parse();
            if (x)
                issuer = client::name_text(X509_get_issuer_name(x.get()));
        }
        CaChoice ca = choose_ca(cfg, a, k, issuer, enroll);
        fresh(ctx, *s, k, path, a, enroll, ca, fresh_out);
        fresh_out.resumed = had;
        out = std::move(fresh_out);
    }
    json doc = {{"operation", enroll ? "enroll" : "renew"},
                {"state", out.state},
                {"resumed", out.resumed},
                {"key_id", out.key_id},
                {"certificate", out.certificate},
                {"old", out.old},
                {"old_action", out.old_action},
                {"ca", out.ca},
                {"steps", out.steps}};
    ctx.print(doc, [&] {
        if (out.state == "rolled_back")
            std::cout << "Rolled back an unfinished renewal on Key '" << shown(k.label()) << "': its old certificate is "
                      << "unchanged.\n";
        else if (!out.certificate.is_null())
            std::cout << (enroll ? "Enrolled" : "Renewed") << ": '" << shown(out.certificate["label"].get<std::string>())
                      << "' (" << shown(out.certificate["subject"].get<std::string>()) << ", key "
                      << out.key_id.get<std::string>() << ") valid until "
                      << out.certificate["not_after"].get<std::string>() << "\n"
                      << (out.old_action == "deleted"           ? "The old certificate and its key were removed.\n"
                          : out.old_action == "kept_superseded" ? "The old certificate was kept, labelled superseded "
                                                                  "(`ukey cert superseded clean` removes it).\n"
                                                                : "");
    });
}

// --- superseded -----------------------------------------------------------------

void superseded(Context& ctx, const std::string& spec, bool clean, bool yes, const PinSource& pin)
{
    client::KeyInfo k = select_key(ctx, spec);
    std::unique_ptr<client::Session> s = clean ? user_session(ctx, k, pin, true)
                                               : must(client::Session::open(ctx.module(), k.slot, false));
    auto certs = must(client::read_certificates(*s));
    json list = json::array();
    std::vector<const client::CertOnKey*> found;
    for (const auto& c : certs)
        if (c.label.rfind(superseded_prefix, 0) == 0) {
            found.push_back(&c);
            auto x = c.parse();
            list.push_back(x ? cert_summary(x.get(), c.label, c.id) : json{{"label", c.label}, {"id", client::to_hex(c.id)}});
        }
    if (!clean) {
        ctx.print({{"superseded", list}}, [&] {
            if (list.empty())
                std::cout << "No superseded certificates on Key '" << shown(k.label()) << "'.\n";
            for (const auto& j : list)
                std::cout << "id " << j["id"].get<std::string>() << "  '" << shown(j["label"].get<std::string>()) << "'\n";
        });
        return;
    }
    if (!found.empty() && !yes && !confirm({"Delete " + std::to_string(found.size()) +
                                            " superseded certificate(s) and their keys from Key '" + k.label() + "'?"}))
        throw Failure(cancelled, "nothing was deleted: confirm on a terminal or with --yes");
    int keys_deleted = 0;
    auto keys = must(client::read_keys(*s));
    for (const auto* c : found) {
        check(s->f()->C_DestroyObject(s->handle(), c->handle), "deleting the superseded certificate '" + c->label + "'");
        // Its key goes too, unless a current certificate still uses it.
        bool used = std::any_of(certs.begin(), certs.end(), [&](const auto& o) {
            return o.id == c->id && o.label.rfind(superseded_prefix, 0) != 0;
        });
        for (const auto& kk : keys)
            if (!used && kk.id == c->id && kk.label.rfind(superseded_prefix, 0) == 0) {
                check(s->f()->C_DestroyObject(s->handle(), kk.handle), "deleting a superseded key");
                ++keys_deleted;
            }
    }
    ctx.print({{"deleted", list}, {"keys_deleted", keys_deleted}}, [&] {
        std::cout << "Deleted " << found.size() << " superseded certificate(s) and " << keys_deleted
                  << " key object(s) from Key '" << shown(k.label()) << "'.\n";
    });
}

} // namespace

void add_renew(CLI::App& app, Context& ctx)
{
    const std::string key_help = "the Key: pkcs11: URI, label, serial or slot (default: the only one)";

    static Args e;
    auto* en = app.add_subcommand("enroll", "Get a first certificate from a SCEP CA: a new key pair on the Key, "
                                            "the request, the certificate written next to it");
    en->add_option("KEY", e.spec, key_help);
    en->add_option("--ca", e.ca_url, "the SCEP URL, http://host[:port]/path");
    en->add_option("--ca-fingerprint", e.ca_fingerprint, "SHA-256 of the CA certificate (hex), checked first");
    en->add_option("--ca-name", e.ca_name, "a [[renewal.ca]] of the config instead of --ca");
    en->add_option("--subject", e.subject, "the subject: /CN=Alice/O=Example or CN=Alice,O=Example")->required();
    en->add_option("--type", e.type, "rsa2048 (default), rsa3072 or rsa4096 (SCEP needs RSA)")
        ->check(CLI::IsMember({"rsa2048", "rsa3072", "rsa4096"}));
    en->add_option("--label", e.label, "the label of the key and certificate (default: the subject's CN)");
    en->add_option("--timeout", e.timeout, "seconds for each CA exchange and for PENDING polls (default 120)")
        ->check(CLI::Range(1, 3600));
    add_pin_options(en, e.challenge, "challenge", "CA's challenge password");
    add_pin_options(en, e.pin, "pin", "user PIN");
    en->callback([&ctx] { run_cmd(ctx, e, true); });

    static Args r;
    auto* rn = app.add_subcommand("renew", "Renew a certificate on the Key over SCEP before it expires "
                                           "(crash-safe; --resume finishes an interrupted one)");
    rn->add_option("KEY", r.spec, key_help);
    rn->add_option("--cert", r.cert_id, "the id of the certificate to renew (default: the only one with a key)");
    rn->add_flag("--rekey", r.rekey, "a new key pair of the same size (the default)");
    rn->add_flag("--same-key", r.same_key, "keep the key pair, only renew the certificate");
    rn->add_flag("--keep-old", r.keep_old, "keep the old certificate and key, labelled superseded");
    rn->add_option("--ca", r.ca_url, "the SCEP URL (default: the [[renewal.ca]] serving this Key)");
    rn->add_option("--ca-fingerprint", r.ca_fingerprint, "SHA-256 of the CA certificate (hex), checked first");
    rn->add_option("--ca-name", r.ca_name, "a [[renewal.ca]] of the config by name");
    rn->add_option("--timeout", r.timeout, "seconds for each CA exchange and for PENDING polls")
        ->check(CLI::Range(1, 3600));
    rn->add_flag("--resume", r.resume, "only finish or roll back an interrupted renewal (ukeyd runs this)");
    rn->add_flag("--unattended", r.unattended,
                 "no prompts: the user PIN from [renewal] pin_file (root's, mode 0600), for ukeyd");
    add_pin_options(rn, r.challenge, "challenge", "CA's challenge password (if the CA wants one for renewals)");
    add_pin_options(rn, r.pin, "pin", "user PIN");
    rn->callback([&ctx] { run_cmd(ctx, r, false); });

    // ukey cert superseded list|clean (under `cert`, registered before).
    CLI::App* cert = nullptr;
    try {
        cert = app.get_subcommand("cert");
    } catch (const CLI::OptionNotFound&) {
    }
    if (!cert)
        return;
    auto* sup = cert->add_subcommand("superseded", "List or delete certificates superseded by a renewal (--keep-old)");
    sup->require_subcommand(1);
    static std::string spec_l, spec_c;
    static bool yes = false;
    static PinSource pin_c;
    auto* sl = sup->add_subcommand("list", "List the superseded certificates (no PIN needed)");
    sl->add_option("KEY", spec_l, key_help);
    sl->callback([&ctx] { superseded(ctx, spec_l, false, false, PinSource{}); });
    auto* sc = sup->add_subcommand("clean", "Delete the superseded certificates and their keys");
    sc->add_option("KEY", spec_c, key_help);
    sc->add_flag("-y,--yes", yes, "do not ask for confirmation");
    add_pin_options(sc, pin_c, "pin", "user PIN");
    sc->callback([&ctx] { superseded(ctx, spec_c, true, yes, pin_c); });
}

} // namespace ukey::cli
