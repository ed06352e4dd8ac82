// ukey cert list | show | export | write | delete: X.509 certificates on a Key.
//
// Certificates are public objects: list, show and export need no PIN; write
// and delete log in as the user.
//
// JSON output (--json), snake_case, stable:
//
// A certificate summary ("cert" below):
//   {"label": "..." (CKA_LABEL), "id": "hex" (CKA_ID, "" if none),
//    "subject": "CN=Alice,O=Example" (RFC 2253), "issuer": "CN=...",
//    "serial": "hex" (lowercase, no sign for positive serials),
//    "not_before": "2026-01-01T00:00:00Z", "not_after": "...",
//    "days_left": 364 (whole days until not_after, negative once expired),
//    "status": "valid" | "expired" | "not_yet_valid" | "unreadable",
//    "category": "user" | "authority" | "other"
//       (CKA_CERTIFICATE_CATEGORY 1/2/3; when the Key says 0 "unspecified":
//        user if a key with its id is on the Key, else authority for a CA
//        certificate, else other),
//    "has_key": true | false (a private or public key with the same CKA_ID is
//       on the Key; without login only public keys are seen)}
//   An unreadable certificate has status "unreadable" and null in the fields
//   taken from its content.
//
// ukey cert list KEY
//   {"certificates": [cert, ...]}
//
// ukey cert show KEY [--id HEX] [--label L] | ukey cert show --file F
//   {"certificates": [details, ...]}   (one entry for a Key; every
//   certificate of the file with --file)
//   details = cert plus
//   {"key_usage": ["digitalSignature", ...], "ext_key_usage": ["clientAuth", ...],
//    "subject_alt_names": ["DNS:a.example", "email:a@example", "IP:1.2.3.4", "URI:...", "UPN:..."],
//    "crl_distribution_points": ["http://..."],
//    "fingerprints": {"sha256": "hex", "sha1": "hex"},
//    "signature_algorithm": "sha256WithRSAEncryption",
//    "public_key": {"type": "rsa" | "ec" | ..., "bits": 2048, "curve": "P-256" | null},
//    "subject_key_id": "hex" | null, "is_ca": bool, "self_signed": bool,
//    "key_id": "hex" | null (the id of the key on the Key whose public key
//       is the certificate's; null if none, and always with --file),
//    "file": "path" | null}
//   With --file, label and id are null, has_key is false and category is
//   authority for a CA certificate, else other.
//
// ukey cert export KEY [--id HEX] [--label L] [--out FILE] [--der]
//   {"label", "id", "subject", "file": "path" | null, "format": "pem" | "der",
//    "pem": "-----BEGIN CERTIFICATE-----..."}
//   Without --out the certificate goes to standard output; with --json it is
//   only in the document.
//
// ukey cert write KEY --file F [--label L] [--force]
//   {"certificates": [cert + {"action": "written" | "already_present"}, ...],
//    "replaced": [cert, ...] (older certificates of the same key, deleted
//       after the new one was written and read back)}
//
// ukey cert delete KEY [--id HEX] [--label L] [--all] [--yes]
//   {"deleted": [cert, ...]}
//
// --id and --label together select certificates matching both. Without
// either, the only certificate on the Key is meant.
#include "client/certs.h"
#include "cli.h"

#include <openssl/err.h>

#include <algorithm>
#include <csignal>
#include <iostream>
#include <unistd.h>

namespace ukey::cli {

namespace {

const std::string key_help = "the Key: pkcs11: URI, label, serial or slot (default: the only one)";

nlohmann::json opt(const std::string& s)
{
    return s.empty() ? nlohmann::json(nullptr) : nlohmann::json(s);
}

bool has_key_with_id(const std::vector<client::KeyOnKey>& keys, const client::Bytes& id)
{
    return !id.empty() && std::any_of(keys.begin(), keys.end(), [&](const auto& k) { return k.id == id; });
}

std::string category_name(CK_ULONG category, bool has_key, bool is_ca)
{
    switch (category) {
    case 1:
        return "user";
    case 2:
        return "authority";
    case 3:
        return "other";
    default:
        return has_key ? "user" : is_ca ? "authority" : "other";
    }
}

// The summary of one certificate (parsed or not).
nlohmann::json cert_json(X509* x, const std::string* label, const client::Bytes* id, CK_ULONG category,
                         bool has_key)
{
    nlohmann::json j;
    j["label"] = label ? nlohmann::json(*label) : nlohmann::json(nullptr);
    j["id"] = id ? nlohmann::json(client::to_hex(*id)) : nlohmann::json(nullptr);
    j["has_key"] = has_key;
    if (!x) {
        for (const char* f : {"subject", "issuer", "serial", "not_before", "not_after", "days_left"})
            j[f] = nullptr;
        j["status"] = "unreadable";
        j["category"] = category_name(category, has_key, false);
        return j;
    }
    const std::time_t now = std::time(nullptr);
    client::CertDetails d = client::cert_details(x);
    j["subject"] = d.subject;
    j["issuer"] = d.issuer;
    j["serial"] = d.serial;
    j["not_before"] = d.not_before ? nlohmann::json(client::iso8601(*d.not_before)) : nlohmann::json(nullptr);
    j["not_after"] = d.not_after ? nlohmann::json(client::iso8601(*d.not_after)) : nlohmann::json(nullptr);
    j["days_left"] = d.not_after ? nlohmann::json(client::days_until(*d.not_after, now)) : nlohmann::json(nullptr);
    j["status"] = client::validity_status(x, now);
    j["category"] = category_name(category, has_key, d.is_ca);
    return j;
}

nlohmann::json cert_json(const client::CertOnKey& c, const std::vector<client::KeyOnKey>& keys)
{
    auto x = c.parse();
    return cert_json(x.get(), &c.label, &c.id, c.category, has_key_with_id(keys, c.id));
}

std::string days_text(const nlohmann::json& j)
{
    if (j["days_left"].is_null())
        return "";
    long days = j["days_left"].get<long>();
    if (j["status"] == "expired")
        return "EXPIRED " + std::to_string(-days) + " days ago";
    if (j["status"] == "not_yet_valid")
        return "NOT YET VALID";
    return std::to_string(days) + " days left";
}

std::string cert_line(const nlohmann::json& j)
{
    std::string id = j["id"].is_null() ? "" : j["id"].get<std::string>();
    std::string line = "id " + (id.empty() ? std::string("(none)") : id);
    if (!j["label"].is_null())
        line += "  '" + shown(j["label"].get<std::string>()) + "'";
    line += "  " + j["category"].get<std::string>();
    if (j["status"] == "unreadable")
        return line + "  UNREADABLE (not a valid X.509 certificate)";
    line += "  " + shown(j["subject"].get<std::string>());
    if (!j["not_after"].is_null())
        line += "  until " + j["not_after"].get<std::string>().substr(0, 10) + " (" + days_text(j) + ")";
    if (j["category"] == "user")
        line += j["has_key"].get<bool>() ? ", key present" : ", NO KEY on the Key";
    return line;
}

// The certificates selected by --id / --label (or the only one).
std::vector<const client::CertOnKey*> select_certs(const std::vector<client::CertOnKey>& certs,
                                                   const std::string& id_text, const std::string& label)
{
    std::vector<const client::CertOnKey*> out;
    if (id_text.empty() && label.empty()) {
        if (certs.empty())
            throw Failure(not_found, "there is no certificate on the Key: write one with `ukey cert write`");
        if (certs.size() > 1)
            throw Failure(ambiguous, std::to_string(certs.size()) + " certificates are on the Key: name one with "
                                                                    "--id or --label (`ukey cert list` shows them)");
        out.push_back(&certs[0]);
        return out;
    }
    std::optional<client::Bytes> id;
    if (!id_text.empty())
        id = parse_id(id_text, "--id");
    for (const auto& c : certs)
        if ((!id || c.id == *id) && (label.empty() || c.label == label))
            out.push_back(&c);
    std::string what = id && !label.empty() ? "the id " + client::to_hex(*id) + " and the label '" + label + "'"
                       : id                 ? "the id " + client::to_hex(*id)
                                            : "the label '" + label + "'";
    if (out.empty())
        throw Failure(not_found, "no certificate on the Key has " + what + ": list them with `ukey cert list`");
    return out;
}

const client::CertOnKey& select_one(const std::vector<client::CertOnKey>& certs, const std::string& id_text,
                                    const std::string& label)
{
    auto found = select_certs(certs, id_text, label);
    if (found.size() > 1)
        throw Failure(ambiguous, std::to_string(found.size()) + " certificates match: name one by both --id and "
                                                                "--label (`ukey cert list` shows them)");
    return *found[0];
}

// Writes a certificate (or request) to --out or standard output.
void emit(Context& ctx, X509* x, const std::string& out, bool der)
{
    client::Bytes bytes;
    if (der) {
        bytes = client::to_der(x);
    } else {
        std::string pem = client::to_pem(x);
        bytes.assign(pem.begin(), pem.end());
    }
    if (!out.empty()) {
        if (std::string err = client::write_file(out, bytes); !err.empty())
            throw Failure(failure, "cannot write " + out + ": " + err + "; choose another --out");
    } else if (!ctx.json) {
        std::cout.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
        std::cout.flush();
    }
}

// --- list -------------------------------------------------------------------

struct ListArgs {
    std::string spec;
};

void list(Context& ctx, ListArgs& a)
{
    client::KeyInfo k = select_key(ctx, a.spec);
    auto s = must(client::Session::open(ctx.module(), k.slot, false));
    auto certs = must(client::read_certificates(*s));
    auto keys = must(client::read_keys(*s));
    nlohmann::json doc = {{"certificates", nlohmann::json::array()}};
    for (const auto& c : certs)
        doc["certificates"].push_back(cert_json(c, keys));
    ctx.print(doc, [&] {
        if (certs.empty())
            std::cout << "No certificates on Key '" << shown(k.label()) << "'.\n";
        for (const auto& j : doc["certificates"])
            std::cout << cert_line(j) << "\n";
    });
}

// --- show -------------------------------------------------------------------

struct ShowArgs {
    std::string spec, id, label, file;
};

nlohmann::json details_json(X509* x, nlohmann::json j, const std::optional<client::Bytes>& key_id,
                            const std::string& file)
{
    client::CertDetails d = client::cert_details(x);
    j["key_usage"] = d.key_usage;
    j["ext_key_usage"] = d.ext_key_usage;
    j["subject_alt_names"] = d.subject_alt_names;
    j["crl_distribution_points"] = d.crl_distribution_points;
    j["fingerprints"] = {{"sha256", client::to_hex(d.sha256)}, {"sha1", client::to_hex(d.sha1)}};
    j["signature_algorithm"] = d.signature_algorithm;
    j["public_key"] = {{"type", d.public_key.type}, {"bits", d.public_key.bits}, {"curve", opt(d.public_key.curve)}};
    j["subject_key_id"] = d.subject_key_id.empty() ? nlohmann::json(nullptr) : nlohmann::json(client::to_hex(d.subject_key_id));
    j["is_ca"] = d.is_ca;
    j["self_signed"] = d.self_signed;
    j["key_id"] = key_id ? nlohmann::json(client::to_hex(*key_id)) : nlohmann::json(nullptr);
    j["file"] = opt(file);
    return j;
}

void print_details(const nlohmann::json& j)
{
    auto list = [](const nlohmann::json& a) {
        std::string s;
        for (const auto& v : a)
            s += (s.empty() ? "" : ", ") + shown(v.get<std::string>());
        return s.empty() ? std::string("-") : s;
    };
    auto colons = [](const std::string& h) {
        auto b = client::from_hex(h);
        return b ? client::colon_hex(*b) : h;
    };
    if (!j["file"].is_null())
        std::cout << "Certificate from " << shown(j["file"].get<std::string>()) << "\n";
    else
        std::cout << "Certificate " << cert_line(j) << "\n";
    std::cout << "  subject:        " << shown(j["subject"].get<std::string>()) << "\n"
              << "  issuer:         " << shown(j["issuer"].get<std::string>()) << "\n"
              << "  serial:         " << j["serial"].get<std::string>() << "\n"
              << "  valid:          " << (j["not_before"].is_null() ? "?" : j["not_before"].get<std::string>())
              << " to " << (j["not_after"].is_null() ? "?" : j["not_after"].get<std::string>()) << " ("
              << days_text(j) << ")\n"
              << "  key usage:      " << list(j["key_usage"]) << "\n"
              << "  ext. key usage: " << list(j["ext_key_usage"]) << "\n"
              << "  alt. names:     " << list(j["subject_alt_names"]) << "\n"
              << "  CRL:            " << list(j["crl_distribution_points"]) << "\n"
              << "  public key:     " << j["public_key"]["type"].get<std::string>() << " "
              << (j["public_key"]["curve"].is_null() ? std::to_string(j["public_key"]["bits"].get<int>())
                                                     : j["public_key"]["curve"].get<std::string>())
              << "\n"
              << "  signature:      " << j["signature_algorithm"].get<std::string>() << "\n"
              << "  CA:             " << (j["is_ca"].get<bool>() ? "yes" : "no")
              << (j["self_signed"].get<bool>() ? " (self-signed)" : "") << "\n"
              << "  SKI:            " << (j["subject_key_id"].is_null() ? "-" : j["subject_key_id"].get<std::string>())
              << "\n"
              << "  SHA-256:        " << colons(j["fingerprints"]["sha256"].get<std::string>()) << "\n"
              << "  SHA-1:          " << colons(j["fingerprints"]["sha1"].get<std::string>()) << "\n";
    if (j["file"].is_null())
        std::cout << "  key on the Key: "
                  << (j["key_id"].is_null() ? std::string("none matches its public key")
                                            : "id " + j["key_id"].get<std::string>())
                  << "\n";
}

std::vector<client::X509Ptr> load_file(const std::string& path)
{
    auto bytes = client::read_file(path);
    if (!bytes)
        throw Failure(bad_input,
                      "cannot read " + path + ": " + bytes.error().message + "; check the path and its permissions");
    auto certs = client::load_certificates(*bytes);
    if (!certs)
        throw Failure(bad_input, path + " is not a certificate file: " + certs.error().message +
                                     "; give a PEM, DER or PKCS#7 (.p7b) file");
    return std::move(*certs);
}

void show(Context& ctx, ShowArgs& a)
{
    nlohmann::json doc = {{"certificates", nlohmann::json::array()}};
    if (!a.file.empty()) {
        for (auto& x : load_file(a.file)) {
            nlohmann::json j = cert_json(x.get(), nullptr, nullptr, 0, false);
            doc["certificates"].push_back(details_json(x.get(), j, std::nullopt, a.file));
        }
    } else {
        client::KeyInfo k = select_key(ctx, a.spec);
        auto s = must(client::Session::open(ctx.module(), k.slot, false));
        auto certs = must(client::read_certificates(*s));
        auto keys = must(client::read_keys(*s));
        const client::CertOnKey& c = select_one(certs, a.id, a.label);
        auto x = c.parse();
        if (!x)
            throw Failure(bad_input, "the certificate '" + c.label + "' (id " + client::to_hex(c.id) +
                                         ") on the Key is not a valid X.509 certificate: delete it with `ukey cert "
                                         "delete` and write it again");
        std::optional<client::Bytes> key_id;
        if (const client::KeyOnKey* m = client::key_matching(keys, X509_get0_pubkey(x.get())))
            key_id = m->id;
        doc["certificates"].push_back(details_json(x.get(), cert_json(c, keys), key_id, ""));
    }
    ctx.print(doc, [&] {
        for (const auto& j : doc["certificates"])
            print_details(j);
    });
}

// --- export -----------------------------------------------------------------

struct ExportArgs {
    std::string spec, id, label, out;
    bool der = false;
};

void export_cert(Context& ctx, ExportArgs& a)
{
    if (a.der && a.out.empty() && !ctx.json && isatty(STDOUT_FILENO))
        throw Failure(usage, "a DER certificate is binary: write it to a file with --out FILE, or drop --der for PEM");
    client::KeyInfo k = select_key(ctx, a.spec);
    auto s = must(client::Session::open(ctx.module(), k.slot, false));
    auto certs = must(client::read_certificates(*s));
    const client::CertOnKey& c = select_one(certs, a.id, a.label);
    auto x = c.parse();
    if (!x)
        throw Failure(bad_input, "the certificate '" + c.label + "' (id " + client::to_hex(c.id) +
                                     ") on the Key is not a valid X.509 certificate, so it cannot be exported");
    emit(ctx, x.get(), a.out, a.der);
    if (a.out.empty() && !ctx.json)
        return;
    nlohmann::json doc = {{"label", c.label},
                          {"id", client::to_hex(c.id)},
                          {"subject", client::name_text(X509_get_subject_name(x.get()))},
                          {"file", opt(a.out)},
                          {"format", a.der ? "der" : "pem"},
                          {"pem", client::to_pem(x.get())}};
    ctx.print(doc, [&] {
        std::cout << "Exported certificate '" << shown(c.label) << "' (" << shown(doc["subject"].get<std::string>())
                  << ") to " << shown(a.out) << (a.der ? " (DER)" : " (PEM)") << "\n";
    });
}

// --- delete -----------------------------------------------------------------

struct DeleteArgs {
    std::string spec, id, label;
    bool all = false, yes = false;
    PinSource pin;
};

void delete_cert(Context& ctx, DeleteArgs& a)
{
    if (a.id.empty() && a.label.empty())
        throw Failure(usage, "name the certificate to delete with --id or --label (`ukey cert list` shows them)");
    client::KeyInfo k = select_key(ctx, a.spec);
    auto s = user_session(ctx, k, a.pin, true);
    auto certs = must(client::read_certificates(*s));
    auto keys = must(client::read_keys(*s));
    auto found = select_certs(certs, a.id, a.label);
    if (found.size() > 1 && !a.all)
        throw Failure(ambiguous, std::to_string(found.size()) + " certificates match: name one by both --id and "
                                                                "--label, or add --all to delete every one");
    nlohmann::json deleted = nlohmann::json::array();
    for (const auto* c : found)
        deleted.push_back(cert_json(*c, keys));
    if (!a.yes) {
        std::vector<std::string> question{"Delete from Key '" + k.label() + "':"};
        for (const auto& j : deleted)
            question.push_back("  " + cert_line(j));
        question.push_back("Delete?");
        if (!confirm(question))
            throw Failure(cancelled, "nothing was deleted: confirm on a terminal or with --yes");
    }
    for (const auto* c : found)
        check(s->f()->C_DestroyObject(s->handle(), c->handle), "deleting the certificate '" + c->label + "'");
    ctx.print({{"deleted", deleted}}, [&] {
        for (const auto& j : deleted)
            std::cout << "Deleted certificate " << cert_line(j) << "\n";
    });
}

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

void add_cert(CLI::App& app, Context& ctx)
{
    auto* cert = app.add_subcommand("cert", "List, show, export, write or delete certificates on a Key");
    cert->require_subcommand(1);

    static ListArgs l;
    auto* ls = cert->add_subcommand("list", "List the certificates on the Key (no PIN needed)");
    ls->add_option("KEY", l.spec, key_help);
    ls->callback([&ctx] { list(ctx, l); });

    static ShowArgs sh;
    auto* show_cmd = cert->add_subcommand("show", "Show one certificate in detail, from the Key or from a file");
    auto* show_key = show_cmd->add_option("KEY", sh.spec, key_help);
    auto* show_id = show_cmd->add_option("--id", sh.id, "the certificate's id (hex)");
    auto* show_label = show_cmd->add_option("--label", sh.label, "the certificate's label");
    show_cmd->add_option("--file", sh.file, "show the certificate(s) in this file (PEM, DER or PKCS#7) instead")
        ->excludes(show_key)
        ->excludes(show_id)
        ->excludes(show_label);
    show_cmd->callback([&ctx] { show(ctx, sh); });

    static ExportArgs ex;
    auto* exp = cert->add_subcommand("export", "Export a certificate from the Key (PEM, or DER with --der)");
    exp->add_option("KEY", ex.spec, key_help);
    exp->add_option("--id", ex.id, "the certificate's id (hex)");
    exp->add_option("--label", ex.label, "the certificate's label");
    exp->add_option("--out", ex.out, "write it to this file (default: standard output)");
    exp->add_flag("--der", ex.der, "DER instead of PEM");
    exp->callback([&ctx] { export_cert(ctx, ex); });

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

    static DeleteArgs d;
    auto* del = cert->add_subcommand("delete", "Delete a certificate from the Key (its key stays)");
    del->add_option("KEY", d.spec, key_help);
    del->add_option("--id", d.id, "the certificate's id (hex)");
    del->add_option("--label", d.label, "the certificate's label");
    del->add_flag("--all", d.all, "delete every certificate that matches, not just one");
    del->add_flag("-y,--yes", d.yes, "do not ask for confirmation");
    add_pin_options(del, d.pin, "pin", "user PIN");
    del->callback([&ctx] { delete_cert(ctx, d); });
}

} // namespace ukey::cli
