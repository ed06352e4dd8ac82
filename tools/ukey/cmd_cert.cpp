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
//   only in the document. --with-key exits 19: the private key
//   never leaves the Key (ukey key export).
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
#include "cert_common.h"
#include "client/public_file.h"

#include <openssl/err.h>

#include <algorithm>
#include <csignal>
#include <iostream>
#include <unistd.h>

namespace ukey::cli {

namespace {

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
        if (auto w = client::write_file(out, bytes); !w)
            throw Failure(failure, "cannot write " + out + ": " + w.error().message + "; choose another --out");
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
    ctx.print_list(doc, "certificates", "No certificates on Key '" + shown(k.label()) + "'.", cert_line);
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
    bool der = false, with_key = false;
};

void export_cert(Context& ctx, ExportArgs& a)
{
    if (a.with_key)
        refuse_key_export();
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
    confirm_deletion(a.yes, "Delete from Key '" + k.label() + "':", deleted, cert_line, "Delete?",
                     "nothing was deleted: confirm on a terminal or with --yes");
    for (const auto* c : found)
        check(s->f()->C_DestroyObject(s->handle(), c->handle), "deleting the certificate '" + c->label + "'");
    ctx.print({{"deleted", deleted}}, [&] {
        for (const auto& j : deleted)
            std::cout << "Deleted certificate " << cert_line(j) << "\n";
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
    exp->add_flag("--with-key", ex.with_key, "not possible: the private key never leaves the Key (exit 19)");
    exp->callback([&ctx] { export_cert(ctx, ex); });

    add_cert_write(cert, ctx);

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
