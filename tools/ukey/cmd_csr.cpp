// ukey csr: a PKCS#10 certificate request for a key on the Key, signed on
// the Key (the private key never leaves it) and checked before it is written.
//
// ukey csr KEY --key ID --subject DN [--san LIST] [--key-usage LIST]
//          [--ext-key-usage LIST] [--hash sha256|sha384] [--out FILE] [--der]
//
// --subject: "/CN=Alice/O=Example" (OpenSSL's slash form, in order) or
// "CN=Alice,O=Example" (RFC 4514, most specific first).
// --san, --key-usage, --ext-key-usage: OpenSSL's config syntax
// ("DNS:a.example,email:a@example,IP:1.2.3.4"; "digitalSignature,keyEncipherment"
// (marked critical); "clientAuth,emailProtection").
//
// Without --out the request goes to standard output (PEM, or DER with --der);
// with --json it is only in the JSON document.
//
// JSON output (--json), snake_case, stable:
//   {"subject": "CN=Alice,O=Example" (RFC 2253),
//    "key_id": "hex",
//    "public_key": {"type": "rsa" | "ec", "bits": 2048, "curve": "P-256" | null},
//    "hash": "sha256" | "sha384",
//    "signature_algorithm": "sha256WithRSAEncryption" | "ecdsa-with-SHA256" | ...,
//    "extensions": {"subject_alt_names": [...], "key_usage": [...], "ext_key_usage": [...]},
//    "file": "path" | null, "format": "pem" | "der",
//    "pem": "-----BEGIN CERTIFICATE REQUEST-----..."}
#include "cli.h"
#include "client/certs.h"
#include "client/public_file.h"
#include "client/signer.h"

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include <iostream>
#include <unistd.h>

namespace ukey::cli {

namespace {

struct CsrArgs {
    std::string spec, key_id, subject, san, key_usage, ext_key_usage, out, hash = "sha256";
    bool der = false;
    PinSource pin;
};

// The public key of private key `priv`: its own attributes, else the public
// key object with its id, else a certificate with its id. Checked later by
// X509_REQ_verify, so a wrong guess cannot produce a bad request.
client::PKeyPtr public_key_for(const client::Session& s, CK_OBJECT_HANDLE priv, const client::Bytes& id)
{
    auto keys = must(client::read_keys(s));
    const client::KeyOnKey* mine = nullptr;
    for (const auto& k : keys)
        if (k.handle == priv)
            mine = &k;
    if (mine && mine->public_key) {
        EVP_PKEY_up_ref(mine->public_key.get());
        return client::PKeyPtr(mine->public_key.get());
    }
    for (const auto& k : keys) {
        if (!k.is_private() && k.id == id && k.public_key && (!mine || k.type == mine->type)) {
            EVP_PKEY_up_ref(k.public_key.get());
            return client::PKeyPtr(k.public_key.get());
        }
    }
    for (const auto& c : must(client::read_certificates(s))) {
        if (c.id != id)
            continue;
        if (auto x = c.parse())
            if (EVP_PKEY* pk = X509_get_pubkey(x.get()))
                return client::PKeyPtr(pk);
    }
    throw Failure(not_found, "the public half of key " + client::to_hex(id) + " is not on the Key, so the request cannot "
                             "name it: regenerate the key pair with `ukey key generate`");
}

void add_extension(X509_REQ* req, STACK_OF(X509_EXTENSION) * exts, int nid, const std::string& value,
                   const std::string& option, const std::string& example, const std::string& prefix = "")
{
    auto e = client::make_extension(req, nid, prefix + value);
    if (!e)
        throw Failure(bad_input, option + " '" + value + "' is not understood (" + e.error().message +
                                     "): write it like " + example);
    sk_X509_EXTENSION_push(exts, e->release());
}

void run(Context& ctx, CsrArgs& a)
{
    // Everything that can be checked without the Key first, so no PIN is
    // asked for a request that cannot be made.
    client::Bytes id = parse_id(a.key_id, "--key");
    auto hash = client::hash_from_name(a.hash);
    if (!hash)
        throw Failure(usage, "--hash must be sha256 or sha384");
    auto name = client::parse_name(a.subject);
    if (!name)
        throw Failure(bad_input, "--subject '" + a.subject + "' is not a name: " + name.error().message);
    if (a.der && a.out.empty() && !ctx.json && isatty(STDOUT_FILENO))
        throw Failure(usage, "a DER request is binary: write it to a file with --out FILE, or drop --der for PEM");

    client::X509ReqPtr req(X509_REQ_new());
    X509_REQ_set_version(req.get(), X509_REQ_VERSION_1);
    X509_REQ_set_subject_name(req.get(), name->get());
    client::ExtStack exts_owner(sk_X509_EXTENSION_new_null());
    STACK_OF(X509_EXTENSION)* exts = exts_owner.get();
    if (!a.san.empty())
        add_extension(req.get(), exts, NID_subject_alt_name, a.san, "--san",
                      "DNS:a.example,email:a@example,IP:1.2.3.4");
    if (!a.key_usage.empty())
        add_extension(req.get(), exts, NID_key_usage, a.key_usage, "--key-usage",
                      "digitalSignature,keyEncipherment (also nonRepudiation, keyAgreement, dataEncipherment)",
                      "critical,");
    if (!a.ext_key_usage.empty())
        add_extension(req.get(), exts, NID_ext_key_usage, a.ext_key_usage, "--ext-key-usage",
                      "clientAuth,emailProtection (also serverAuth, codeSigning, or a dotted OID)");

    client::KeyInfo k = select_key(ctx, a.spec);
    auto s = user_session(ctx, k, a.pin, false);
    CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
    auto found = must(s->find({{CKA_CLASS, &cls, sizeof cls}, {CKA_ID, id.data(), id.size()}}));
    if (found.empty())
        throw Failure(not_found,
                      "no private key on the Key has the id " + client::to_hex(id) + ": list them with `ukey key list`");
    if (found.size() > 1)
        throw Failure(ambiguous, std::to_string(found.size()) + " private keys on the Key have the id " + client::to_hex(id) +
                                     ": give them distinct ids (the Key was written by another tool)");
    const CK_OBJECT_HANDLE priv = found[0];
    client::PKeyPtr pub = public_key_for(*s, priv, id);

    if (X509_REQ_set_pubkey(req.get(), pub.get()) != 1)
        throw Failure(failure,
                      "OpenSSL cannot put key " + client::to_hex(id) + " into a request (" + client::openssl_errors() + ")");
    if (sk_X509_EXTENSION_num(exts) > 0 && X509_REQ_add_extensions(req.get(), exts) != 1)
        throw Failure(failure, "OpenSSL cannot add the extensions (" + client::openssl_errors() + ")");

    // The to-be-signed part, re-encoded; the signature is made on the Key.
    const client::Bytes tbs = client::i2d_bytes(req.get(), i2d_re_X509_REQ_tbs);
    if (tbs.empty())
        throw Failure(failure, "OpenSSL cannot encode the request (" + client::openssl_errors() + ")");

    ctx.progress("Signing the request on the Key...\n");
    client::Signature sig = must(client::sign(*s, priv, tbs, *hash));
    client::X509AlgorPtr alg = sig.algorithm_identifier();
    client::OsslPtr<ASN1_BIT_STRING, ASN1_BIT_STRING_free> bits(ASN1_BIT_STRING_new());
    if (!alg || !bits || ASN1_BIT_STRING_set(bits.get(), sig.value.data(), static_cast<int>(sig.value.size())) != 1)
        throw Failure(failure, "OpenSSL cannot hold the signature (" + client::openssl_errors() + ")");
    bits->flags &= ~(ASN1_STRING_FLAG_BITS_LEFT | 0x07);
    bits->flags |= ASN1_STRING_FLAG_BITS_LEFT;
    X509_REQ_set0_signature(req.get(), bits.release()); // the request owns it now
    X509_REQ_set1_signature_algo(req.get(), alg.get());

    if (X509_REQ_verify(req.get(), pub.get()) != 1) {
        std::string why = client::openssl_errors();
        throw Failure(key_error, "the Key's signature on the request does not verify with key " + client::to_hex(id) +
                                     "'s public key (" + why +
                                     "): the key pair on the Key is damaged or its halves do not match; generate "
                                     "a new one");
    }

    const std::string pem = client::to_pem(req.get());
    const client::Bytes der = client::to_der(req.get());
    client::KeyDescription kd = client::describe_key(pub.get());
    nlohmann::json doc = {{"subject", client::name_text(X509_REQ_get_subject_name(req.get()))},
                          {"key_id", client::to_hex(id)},
                          {"public_key",
                           {{"type", kd.type},
                            {"bits", kd.bits},
                            {"curve", kd.curve.empty() ? nlohmann::json() : nlohmann::json(kd.curve)}}},
                          {"hash", client::hash_name(*hash)},
                          {"signature_algorithm", OBJ_nid2ln(X509_REQ_get_signature_nid(req.get()))},
                          {"extensions",
                           {{"subject_alt_names", nlohmann::json::array()},
                            {"key_usage", nlohmann::json::array()},
                            {"ext_key_usage", nlohmann::json::array()}}},
                          {"file", a.out.empty() ? nlohmann::json() : nlohmann::json(a.out)},
                          {"format", a.der ? "der" : "pem"},
                          {"pem", pem}};
    auto split = [](const std::string& list) {
        nlohmann::json out = nlohmann::json::array();
        std::size_t start = 0;
        while (start <= list.size() && !list.empty()) {
            auto comma = list.find(',', start);
            std::string item = list.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
            while (!item.empty() && item.front() == ' ')
                item.erase(item.begin());
            if (!item.empty())
                out.push_back(item);
            if (comma == std::string::npos)
                break;
            start = comma + 1;
        }
        return out;
    };
    doc["extensions"]["subject_alt_names"] = split(a.san);
    doc["extensions"]["key_usage"] = split(a.key_usage);
    doc["extensions"]["ext_key_usage"] = split(a.ext_key_usage);

    std::span<const unsigned char> bytes =
        a.der ? std::span<const unsigned char>(der)
              : std::span<const unsigned char>(reinterpret_cast<const unsigned char*>(pem.data()), pem.size());
    if (!a.out.empty()) {
        if (auto w = client::write_file(a.out, bytes); !w)
            throw Failure(failure,
                          "cannot write the request to " + a.out + ": " + w.error().message + "; choose another --out");
    }
    if (a.out.empty() && !ctx.json) {
        std::cout.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
        std::cout.flush();
        return;
    }
    ctx.print(doc, [&] {
        std::cout << "Wrote the request for " << shown(doc["subject"].get<std::string>()) << " (key " << client::to_hex(id) << ", "
                  << kd.type << " " << (kd.curve.empty() ? std::to_string(kd.bits) : kd.curve) << ", "
                  << doc["signature_algorithm"].get<std::string>() << ") to " << shown(a.out) << "\n";
    });
}

} // namespace

void add_csr(CLI::App& app, Context& ctx)
{
    static CsrArgs a;
    auto *cmd =
        app.add_subcommand("csr", "Make a certificate request (PKCS#10) for a key on the Key, signed on the Key");
    cmd->add_option("KEY", a.spec, "the Key: pkcs11: URI, label, serial or slot (default: the only one)");
    cmd->add_option("--key", a.key_id, "the id of the key pair (see `ukey key list`)")->required();
    cmd->add_option("--subject", a.subject, "the subject: /CN=Alice/O=Example or CN=Alice,O=Example")->required();
    cmd->add_option("--san", a.san, "subject alternative names: DNS:a.example,email:a@example,IP:1.2.3.4");
    cmd->add_option("--key-usage", a.key_usage, "key usage (critical): digitalSignature,keyEncipherment,...");
    cmd->add_option("--ext-key-usage", a.ext_key_usage, "extended key usage: clientAuth,emailProtection,...");
    cmd->add_option("--hash", a.hash, "sha256 (default) or sha384")->check(CLI::IsMember({"sha256", "sha384"}));
    cmd->add_option("--out", a.out, "write the request to this file (default: standard output)");
    cmd->add_flag("--der", a.der, "DER instead of PEM");
    add_pin_options(cmd, a.pin, "pin", "user PIN");
    cmd->callback([&ctx] { run(ctx, a); });
}

} // namespace ukey::cli
