// ukey enroll | renew: certificates issued and renewed on the Key over SCEP
// (RFC 8894), crash-safe (docs/renewal.md). This file is the command line:
// options, output, exit codes; the journal and its roll back / roll forward
// are client/renewal.h, the key pair and request client/enrolment.h, SCEP
// client/scep.h. `ukey cert superseded` is cmd_superseded.cpp.
//
// ukey enroll KEY --ca URL --ca-fingerprint HEX --subject DN --challenge-fd N|--challenge-file F
//                 [--type rsa2048|rsa3072|rsa4096] [--label L] [--timeout S]
// ukey renew KEY [--cert ID] [--rekey|--same-key] [--keep-old]
//                [--ca URL --ca-fingerprint HEX | --ca-name NAME] [--challenge-fd N|--challenge-file F]
//                [--timeout S] [--resume] [--unattended]
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
#include "cert_common.h"
#include "token/docs.h"
#include "cli.h"
#include "client/cert_details.h"
#include "client/certs.h"
#include "client/enrolment.h"
#include "tool_config.h"
#include "client/journal.h"
#include "client/messages.h"
#include "client/refusal.h"
#include "client/renewal.h"
#include "client/scep.h"
#include "token/config.h"
#include "token/times.h"

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

// The crash switch of the tests (docs/renewal.md, "Testing"): a step's name
// or number (1-6).
void crash_point(client::Step step)
{
    const char* want = secure_getenv("UKEY_TEST_CRASH_AFTER");
    if (want && (std::string(want) == client::step_name(step) || std::to_string(static_cast<int>(step) + 1) == want))
        raise(SIGKILL);
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
                             "set (" UKEY_DOC("renewal.md") ")");
    struct stat st;
    if (lstat(path.c_str(), &st) != 0)
        throw Failure(setup, "the renewal " + what + " file " + path.string() + " cannot be read: " + std::strerror(errno));
    if (!S_ISREG(st.st_mode))
        throw Failure(setup, "the renewal " + what + " file " + path.string() + " is not a regular file (no symlinks)");
    if (st.st_uid != 0 || (st.st_mode & 077))
        throw Failure(setup, "the renewal " + what + " file " + path.string() +
                                 " must be owned by root with mode 0600 (chown root:root; chmod 600): refused");
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

json step_names(const client::Journal& j)
{
    json out = json::array();
    for (const auto& s : j.steps)
        out.push_back(client::step_name(s.step));
    return out;
}

void record(client::Journal& j, client::Step step, client::JournalStore& store)
{
    if (auto r = client::record(j, step, store, std::time(nullptr)); !r)
        throw Failure(failure, r.error().message);
}

// From cert_received on: the certificate written, the pair checked, the old
// objects retired (client/renewal.h).
void finish(client::Journal& j, client::RenewalKey& key, client::JournalStore& store, Outcome& out)
{
    auto done = must(client::roll_forward(j, key, store, std::time(nullptr)));
    out.certificate = cert_summary(done.cert.get(), done.label, done.key_id);
    out.key_id = client::to_hex(done.key_id);
    if (done.old_action != client::OldAction::none)
        out.old_action = client::old_action_name(done.old_action);
}

// Finishes or rolls back a journal left for this Key; false if none.
bool resume(Context& ctx, client::RenewalKey& key, client::FileJournal& store, Outcome& out)
{
    const auto& path = store.path();
    auto text = client::load_journal(path);
    if (!text)
        throw Failure(failure, text.error().message);
    if (!*text)
        return false;
    auto j = client::parse_journal(**text);
    if (!j)
        throw Failure(failure, "the renewal journal " + path.string() + " is damaged (" + j.error().message +
                                   "): check the Key with `ukey cert list` and `ukey key list`, then remove the file");
    out.resumed = true;
    out.old = json::parse(j->old_summary, nullptr, false);
    if (out.old.is_discarded())
        out.old = nullptr;
    out.ca = {{"url", j->ca_url}, {"name", j->ca_name ? json(*j->ca_name) : json(nullptr)}};
    const std::string step = client::step_name(j->step());
    if (client::resume_action(*j) == client::ResumeAction::roll_back) {
        ctx.progress("An unfinished renewal (stopped after '" + step + "') is rolled back...\n");
        out.steps = step_names(*j);
        must(client::roll_back(*j, key, store));
        out.state = "rolled_back";
    } else {
        ctx.progress("An unfinished renewal (stopped after '" + step + "') is completed...\n");
        finish(*j, key, store, out);
        out.steps = step_names(*j);
        out.state = "completed";
    }
    return true;
}

struct CaChoice {
    std::string url, fingerprint;
    std::filesystem::path challenge_file;
    std::optional<std::string> name;
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
        if (client::is_superseded(c.label) || c.category == 2 || c.id.empty())
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

client::Secret read_challenge(const PinSource& src, bool required)
{
    if (src.fd < 0 && src.file.empty()) {
        if (required)
            return read_pin(src, "challenge password");
        return {};
    }
    return read_pin(src, "challenge password");
}

// The CA answered FAILURE: kept beside the journal (client/refusal.h) so
// that `ukey doctor` can explain it later (P15).
struct CaRefused : Failure {
    CaRefused(const std::string& message, int fail_info, std::string fail_text)
        : Failure(ca_error, message), fail_info(fail_info), fail_text(std::move(fail_text)) {}
    int fail_info;
    std::string fail_text;
};

// Sends the request and polls while the CA says PENDING; the certificate
// it issued for `new_pub`, checked against the journal's CA and `subject`.
client::X509Ptr exchange(Context& ctx, client::ScepClient& scep, const client::ScepCaps& caps, client::ScepMessage type,
                         const client::Bytes& csr, const std::string& txid, X509* signer_cert, EVP_PKEY* signer_key,
                         const X509_NAME* subject, EVP_PKEY* new_pub, int timeout,
                         const std::function<void()>& sent)
{
    ctx.progress("Sending the request to the CA...\n");
    auto reply = scep.pki_operation(type, csr, txid, signer_cert, signer_key, caps);
    if (!reply)
        throw Failure(ca_error, reply.error().message);
    sent();
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout);
    int wait_s = 1;
    while (reply->status == client::ScepStatus::pending) {
        const auto left = std::chrono::duration_cast<std::chrono::seconds>(deadline - std::chrono::steady_clock::now());
        wait_s = static_cast<int>(std::min<long>(wait_s, left.count()));
        if (wait_s <= 0)
            throw Failure(ca_error, "the CA has not issued the certificate within " + std::to_string(timeout) +
                                        " s (PENDING: it may wait for an operator): the new key was removed; run "
                                        "`ukey renew` again once the CA has approved it, or raise --timeout");
        ctx.progress("The CA says PENDING; asking again in " + std::to_string(wait_s) + " s...\n");
        std::this_thread::sleep_for(std::chrono::seconds(wait_s));
        wait_s = std::min(wait_s * 2, 30);
        client::Bytes ias = client::issuer_and_subject(X509_get_subject_name(scep.ca()), subject);
        reply = scep.pki_operation(client::ScepMessage::CertPoll, ias, txid, signer_cert, signer_key, caps);
        if (!reply)
            throw Failure(ca_error, reply.error().message);
    }
    if (reply->status == client::ScepStatus::failure) {
        throw CaRefused("the CA refused the request: " + reply->fail_text, reply->fail_info, reply->fail_text);
    }
    for (auto& x : reply->certs)
        if (client::same_public_key(X509_get0_pubkey(x.get()), new_pub))
            return std::move(x);
    throw Failure(ca_error, "the CA sent a certificate for another key (" +
                                client::name_text(X509_get_subject_name(reply->certs[0].get())) +
                                "), not for the new key: it was not written");
}

// Records the CA's refusal for `ukey doctor` (P15); a failure to keep it
// only warns: the refusal itself is what the user must hear.
void keep_refusal(Context& ctx, const client::FileJournal& store, const client::Journal& j, const CaRefused& r,
                  const client::CertOnKey* oldc, X509* oldx)
{
    client::Refusal rec;
    rec.time = std::time(nullptr);
    rec.operation = j.operation;
    rec.ca = j.ca_url;
    rec.fail_info = r.fail_info;
    rec.fail_text = r.fail_text;
    if (oldc && oldx) {
        rec.cert_label = oldc->label;
        rec.cert_serial = client::cert_details(oldx).serial;
    }
    if (auto e = client::save_refusal(client::refusal_path(store.path()), rec); !e)
        ctx.progress("warning: " + e.error().message + "\n");
}

// Enrolment (no old certificate) or renewal, from the start.
void fresh(Context& ctx, const client::Session& s, const client::KeyInfo& k, client::FileJournal& store, Args& a,
           bool enroll, const CaChoice& ca, Outcome& out)
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
        old_priv = must(client::private_key_with_id(s, oldc->id));
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

    client::Journal j;
    j.operation = enroll ? "enroll" : "renew";
    j.key = client::key_identity(k.backend_name(), k.manufacturer(), k.model(), k.serial());
    j.key_label = k.label();
    j.ca_url = ca.url;
    j.ca_name = ca.name;
    j.ca_cert = client::to_der(scep.ca());
    j.rekey = rekey;
    j.keep_old = a.keep_old || ca.keep_old;
    client::Bytes rnd(6);
    RAND_bytes(rnd.data(), static_cast<int>(rnd.size()));
    j.pending_label = "ukey-renewal-pending-" + client::to_hex(rnd);
    j.final_label = oldc ? oldc->label : !a.label.empty() ? a.label : client::common_name(subject.get());
    if (oldc)
        j.old = client::JournalOld{oldc->id, oldc->label, oldc->der};
    j.old_summary = out.old.dump();
    out.ca = {{"url", ca.url}, {"name", ca.name ? json(*ca.name) : json(nullptr)}};
    record(j, client::Step::started, store);

    // From here on a failure before the certificate is in rolls back.
    client::SessionKey key(s);
    try {
        client::NewKeyPair pair;
        if (rekey) {
            ctx.progress("Generating an RSA-" + std::to_string(bits) + " key pair on the Key...\n");
            pair = must(client::generate_rsa(s, bits, j.pending_label));
        } else {
            pair = {old_priv, client::pkey_ref(old_pub.get()), oldc->id};
        }
        j.new_id = pair.id;
        record(j, client::Step::key_generated, store);

        auto new_key = client::onkey_rsa_key(s, pair.priv, pair.pub.get());
        if (!new_key)
            throw Failure(failure, new_key.error().message);
        client::Bytes csr = must(client::make_request(subject.get(), pair.pub.get(), new_key->get(), challenge, oldx.get()));
        challenge.wipe();

        // The pkiMessage's signer: the old certificate and key for a renewal,
        // a throw-away self-signed certificate of the new key for enrolment.
        client::X509Ptr signer_cert{nullptr, X509_free};
        client::PKeyPtr signer_key;
        if (oldx) {
            signer_cert = client::x509_ref(oldx.get());
            auto ok = client::onkey_rsa_key(s, old_priv, old_pub.get());
            if (!ok)
                throw Failure(failure, ok.error().message);
            signer_key = std::move(*ok);
        } else {
            auto ss = client::self_signed(pair.pub.get(), new_key->get(), subject.get());
            if (!ss)
                throw Failure(key_error, ss.error().message);
            signer_cert = std::move(*ss);
            signer_key = client::pkey_ref(new_key->get());
        }
        j.transaction_id = client::transaction_id_for(pair.pub.get());
        client::X509Ptr issued =
            exchange(ctx, scep, *caps, renewal_req ? client::ScepMessage::RenewalReq : client::ScepMessage::PKCSReq, csr,
                     j.transaction_id, signer_cert.get(), signer_key.get(), subject.get(), pair.pub.get(), ca.timeout,
                     [&] { record(j, client::Step::request_sent, store); });

        // The new certificate: for the new key, chained to the pinned CA,
        // valid now, with the subject asked for.
        if (auto ok = client::verify_issued(j, issued.get(), subject.get()); !ok)
            throw Failure(ca_error, "the CA's certificate " + client::name_text(X509_get_subject_name(issued.get())) +
                                        " is not acceptable (" + ok.error().message + "): it was not written");
        j.cert = client::to_der(issued.get());
        j.chain = {j.ca_cert};
        record(j, client::Step::cert_received, store);
        // The CA issued: an earlier refusal no longer explains anything.
        if (auto e = client::remove_refusal(client::refusal_path(store.path())); !e)
            ctx.progress("warning: " + e.error().message + "\n");
    } catch (const Failure& f) {
        std::string why = f.what();
        if (const auto* r = dynamic_cast<const CaRefused*>(&f)) {
            keep_refusal(ctx, store, j, *r, oldc, oldx.get());
            // P15: a refused renewal is usually the CA's policy, not a fault.
            if (!enroll)
                why += "; many CAs renew only in the last weeks before expiry, or do not renew at all and re-issue "
                       "instead: ask your CA for a new certificate";
        }
        // Nothing is written yet: the Key goes back to how it was.
        auto back = client::roll_back(j, key, store);
        std::string state = back ? "; nothing on the Key was changed"
                                 : "; the new key could not be removed (" + back.error().message +
                                       "): the next `ukey renew` removes it";
        throw Failure(f.code, why + state, f.rv);
    }
    try {
        finish(j, key, store, out);
    } catch (const Failure& f) {
        throw Failure(incomplete, f.what() + std::string("; the renewal stopped after '") +
                                      client::step_name(j.step()) + "' and the old certificate still works: run `ukey "
                                      "renew --resume` (with the Key present) to finish it",
                      f.rv);
    }
    out.steps = step_names(j);
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
    client::SessionKey key(*s);
    client::FileJournal store(path, crash_point);
    Outcome out;
    bool had = resume(ctx, key, store, out);
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
        fresh(ctx, *s, k, store, a, enroll, ca, fresh_out);
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

} // namespace

void add_renew(CLI::App& app, Context& ctx)
{
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
    try {
        if (CLI::App* cert = app.get_subcommand("cert"))
            add_superseded(cert, ctx);
    } catch (const CLI::OptionNotFound&) {
    }
}

} // namespace ukey::cli
