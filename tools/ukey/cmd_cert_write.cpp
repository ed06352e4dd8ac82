// ukey cert write KEY --file F [--label L] [--force]: certificates from a
// file onto the Key, next to their keys (JSON in cmd_cert.cpp's header).
#include "cert_common.h"

#include <openssl/err.h>

#include <algorithm>
#include <csignal>
#include <iostream>
#include <unistd.h>

namespace ukey::cli {

namespace {

// --- write ------------------------------------------------------------------

struct WriteArgs {
    std::string spec, file, label;
    bool force = false;
    PinSource pin;
};

// One certificate of the file, and what becomes of it.
struct Incoming {
    client::X509Ptr x{nullptr, X509_free};
    client::Bytes der;
    client::CertDetails d;
    const client::KeyOnKey* key = nullptr; // the key on the Key it certifies
    CK_ULONG category = 0;
    client::Bytes id;
    std::string label;
    bool present = false;
    CK_OBJECT_HANDLE handle = CK_INVALID_HANDLE;
};

// Everything CKA_* a certificate object gets; the vectors hold the values.
struct CertTemplate {
    CK_OBJECT_CLASS cls = CKO_CERTIFICATE;
    CK_CERTIFICATE_TYPE type = CKC_X_509;
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    CK_ULONG category = 0;
    client::Bytes subject, issuer, serial, value, id;
    std::string label;
    std::vector<CK_ATTRIBUTE> attrs;

    CertTemplate(X509* x, const client::Bytes& der, const client::Bytes& id_, const std::string& label_,
                 CK_ULONG category_)
        : category(category_), value(der), id(id_), label(label_)
    {
        if (x) {
            subject = client::name_der(X509_get_subject_name(x));
            issuer = client::name_der(X509_get_issuer_name(x));
            serial = client::serial_der(x);
        }
        // An empty value still gets a pointer: some modules refuse NULL.
        auto bytes = [this](client::Bytes& b) -> CK_VOID_PTR { return b.empty() ? &no : b.data(); };
        attrs = {{CKA_CLASS, &cls, sizeof cls},
                 {CKA_CERTIFICATE_TYPE, &type, sizeof type},
                 {CKA_TOKEN, &yes, sizeof yes},
                 {CKA_PRIVATE, &no, sizeof no},
                 {CKA_LABEL, label.data(), label.size()},
                 {CKA_ID, bytes(id), id.size()},
                 {CKA_VALUE, value.data(), value.size()}};
        if (category)
            attrs.push_back({CKA_CERTIFICATE_CATEGORY, &category, sizeof category});
        if (!subject.empty())
            attrs.push_back({CKA_SUBJECT, subject.data(), subject.size()});
        if (!issuer.empty())
            attrs.push_back({CKA_ISSUER, issuer.data(), issuer.size()});
        if (!serial.empty())
            attrs.push_back({CKA_SERIAL_NUMBER, serial.data(), serial.size()});
    }
    CertTemplate(const CertTemplate&) = delete;
};

// SIGINT and friends wait while the Key is changed, so an interrupted write
// cannot leave half of it behind; they take effect when this goes.
class HoldSignals {
public:
    HoldSignals()
    {
        sigset_t set;
        sigemptyset(&set);
        for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGQUIT})
            sigaddset(&set, sig);
        pthread_sigmask(SIG_BLOCK, &set, &old_);
    }
    ~HoldSignals() { pthread_sigmask(SIG_SETMASK, &old_, nullptr); }
    HoldSignals(const HoldSignals&) = delete;
    HoldSignals& operator=(const HoldSignals&) = delete;

private:
    sigset_t old_;
};

std::string label_for(const client::CertDetails& d)
{
    return d.subject_cn.empty() ? d.subject : d.subject_cn;
}

// Reads a created certificate back and compares it with what was meant.
void check_written(const client::Session& s, const Incoming& c)
{
    auto value = must(s.attribute(c.handle, CKA_VALUE));
    auto id = must(s.attribute(c.handle, CKA_ID));
    auto label = must(s.string_attribute(c.handle, CKA_LABEL));
    std::string differs;
    if (!value || *value != c.der)
        differs = "its content";
    else if ((id ? *id : client::Bytes()) != c.id)
        differs = "its id";
    else if (label != c.label)
        differs = "its label";
    else if (c.category) {
        auto cat = s.ulong_attribute(c.handle, CKA_CERTIFICATE_CATEGORY);
        if (cat && *cat != c.category)
            differs = "its category";
    }
    if (!differs.empty())
        throw Failure(key_error, "the Key stored the certificate '" + c.label + "' with " + differs +
                                     " changed: the Key or its driver is faulty; try another Key");
}

void write_certs(Context& ctx, WriteArgs& a)
{
    std::vector<Incoming> in;
    for (auto& x : load_file(a.file)) {
        Incoming c;
        c.der = client::to_der(x.get());
        if (std::any_of(in.begin(), in.end(), [&](const Incoming& o) { return o.der == c.der; }))
            continue; // the same certificate twice in the file
        c.d = client::cert_details(x.get());
        c.x = std::move(x);
        in.push_back(std::move(c));
    }

    client::KeyInfo k = select_key(ctx, a.spec);
    auto s = user_session(ctx, k, a.pin, true);
    auto keys = must(client::read_keys(*s));
    auto on_key = must(client::read_certificates(*s));

    // Which certificate is whose: the end-entity one(s) certify a key on the Key.
    std::vector<Incoming*> unmatched;
    bool any_match = false;
    for (auto& c : in) {
        c.key = client::key_matching(keys, X509_get0_pubkey(c.x.get()));
        if (c.key) {
            any_match = true;
            c.category = 1;
            c.id = c.key->id;
            c.label = a.label.empty() ? label_for(c.d) : a.label;
        } else {
            c.category = c.d.is_ca ? 2 : 3;
            c.id = c.d.subject_key_id;
            c.label = label_for(c.d);
            if (!c.d.is_ca)
                unmatched.push_back(&c);
        }
        c.present = std::any_of(on_key.begin(), on_key.end(), [&](const auto& o) { return o.der == c.der; });
    }
    if (!a.force && (!any_match || !unmatched.empty())) {
        const Incoming& c = unmatched.empty() ? in.front() : *unmatched.front();
        const std::size_t others = (unmatched.empty() ? in.size() : unmatched.size()) - 1;
        throw Failure(not_found, "no key on Key '" + k.label() + "' matches the certificate " + c.d.subject +
                                     (others ? " (nor " + std::to_string(others) + " more in the file)" : "") +
                                     ", so nothing was written: write it to the Key that holds its key, or add "
                                     "--force to store it anyway");
    }

    // Older certificates of the same keys, replaced once the new ones are in.
    std::vector<const client::CertOnKey*> replaced;
    for (const auto& c : in) {
        if (!c.key || c.present || c.id.empty())
            continue; // an empty id names no key in particular: replace nothing
        for (const auto& o : on_key) {
            bool user = o.category == 1 || o.category == 0;
            if (user && o.id == c.id && o.der != c.der &&
                std::find(replaced.begin(), replaced.end(), &o) == replaced.end())
                replaced.push_back(&o);
        }
    }

    std::vector<Incoming*> todo;
    for (auto& c : in)
        if (!c.present)
            todo.push_back(&c);
    // End-entity certificates first: if the Key fills up, the chain is what is missing.
    std::stable_sort(todo.begin(), todo.end(), [](auto* x, auto* y) { return x->category < y->category; });

    std::vector<const client::CertOnKey*> gone;
    if (!todo.empty()) {
        HoldSignals hold;
        try {
            for (auto* c : todo) {
                CertTemplate t(c->x.get(), c->der, c->id, c->label, c->category);
                check(s->f()->C_CreateObject(s->handle(), t.attrs.data(), t.attrs.size(), &c->handle),
                      "writing the certificate '" + c->label + "' to the Key");
            }
            for (auto* c : todo)
                check_written(*s, *c);
            for (const auto* o : replaced) {
                check(s->f()->C_DestroyObject(s->handle(), o->handle),
                      "deleting the older certificate '" + o->label + "'");
                gone.push_back(o);
            }
        } catch (const Failure& f) {
            // Put the Key back as it was: the new objects go, deleted ones return.
            std::string left;
            for (auto* c : todo)
                if (c->handle != CK_INVALID_HANDLE && s->f()->C_DestroyObject(s->handle(), c->handle) != CKR_OK)
                    left += (left.empty() ? "" : ", ") + std::string("'") + c->label + "'";
            std::string lost;
            for (const auto* o : gone) {
                auto x = o->parse();
                CertTemplate t(x.get(), o->der, o->id, o->label, o->category);
                CK_OBJECT_HANDLE h;
                if (s->f()->C_CreateObject(s->handle(), t.attrs.data(), t.attrs.size(), &h) != CKR_OK)
                    lost += (lost.empty() ? "" : ", ") + std::string("'") + o->label + "'";
            }
            std::string state = left.empty() && lost.empty() ? "; the Key is as it was"
                                : std::string("; the Key could not be fully restored") +
                                      (left.empty() ? "" : ", new certificate(s) " + left + " remain") +
                                      (lost.empty() ? "" : ", older certificate(s) " + lost + " are gone") +
                                      " (check with `ukey cert list`)";
            throw Failure(f.code, f.what() + state, f.rv);
        }
    }

    // Report from what the Key now holds.
    auto now_keys = must(client::read_keys(*s));
    nlohmann::json doc = {{"certificates", nlohmann::json::array()}, {"replaced", nlohmann::json::array()}};
    for (const auto& c : in) {
        nlohmann::json j = cert_json(c.x.get(), &c.label, &c.id, c.category, has_key_with_id(now_keys, c.id));
        if (c.present) {
            // Describe the copy that was already there.
            for (const auto& o : on_key)
                if (o.der == c.der)
                    j = cert_json(o, now_keys);
        }
        j["action"] = c.present ? "already_present" : "written";
        doc["certificates"].push_back(j);
    }
    for (const auto* o : gone)
        doc["replaced"].push_back(cert_json(*o, now_keys));
    ctx.print(doc, [&] {
        for (const auto& j : doc["certificates"])
            std::cout << (j["action"] == "written" ? "Wrote " : "Already on the Key: ") << cert_line(j) << "\n";
        for (const auto& j : doc["replaced"])
            std::cout << "Replaced (deleted) the older " << cert_line(j) << "\n";
    });
}

} // namespace

void add_cert_write(CLI::App* cert, Context& ctx)
{
    static WriteArgs w;
    auto* wr = cert->add_subcommand(
        "write", "Write a certificate (with its chain) to the Key, next to its key; replaces the key's older one");
    wr->add_option("KEY", w.spec, key_help);
    wr->add_option("--file", w.file, "PEM (one or more certificates), DER, or PKCS#7 (.p7b/.p7c); - for stdin")
        ->required();
    wr->add_option("--label", w.label, "the label of the certificate (default: its subject's CN)");
    wr->add_flag("--force", w.force, "also write certificates whose key is not on the Key");
    add_pin_options(wr, w.pin, "pin", "user PIN");
    wr->callback([&ctx] { write_certs(ctx, w); });

}

} // namespace ukey::cli
