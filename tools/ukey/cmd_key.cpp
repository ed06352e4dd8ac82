// ukey key generate | list | delete: key pairs made and kept on the Key.
//
// JSON output (--json), snake_case, stable:
//
// A key object ("key" below), one per PKCS#11 key object:
//   {"class": "private" | "public",
//    "id": "hex" (CKA_ID, "" if none), "label": "..." (CKA_LABEL),
//    "type": "rsa" | "ec" | "ed25519" | "other",
//    "bits": 2048 | null (RSA modulus or EC curve bits; null if unknown),
//    "curve": "P-256" | null (EC only),
//    "has_certificate": true | false (a certificate with the same id is on the Key)}
//
// ukey key generate KEY --type T [--label L] [--id HEX]
//   {"generated": true, "type": "rsa2048" | "rsa3072" | "rsa4096" | "ec-p256" | "ec-p384",
//    "id": "hex", "label": "..." , "id_source": "public_key" | "option",
//    "keys": [key, key] (the private and the public key),
//    "public_key_pem": "-----BEGIN PUBLIC KEY-----..."}
//   The default id is the SHA-1 of the public key (RFC 5280 4.2.1.2 method 1),
//   which is also the subjectKeyIdentifier CAs usually put in its certificate.
//
// ukey key list KEY
//   {"keys": [key, ...]}   (private keys first; sorted by id)
//
// ukey key delete KEY --id HEX [--yes] [--force]
//   {"deleted": [key, ...],
//    "certificates_left": [{"label": "...", "id": "hex", "subject": "CN=..."}]
//      (certificates with that id, kept because of --force)}
//
// ukey key export [anything]
//   exits 19 (not exportable) with one sentence saying why and what to
//   export instead: a private key never leaves the Key.
#include "cert_common.h"
#include "client/certs.h"
#include "cli.h"
#include "client/messages.h"
#include "pin_failure.h"

#include <openssl/pem.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <iostream>
#include <mutex>
#include <stop_token>
#include <string_view>
#include <thread>

namespace ukey::cli {

namespace {

struct KeyType {
    const char* name;
    CK_KEY_TYPE type;
    CK_ULONG bits;
    int curve_nid;
    const char* display;
};

const KeyType key_types[] = {
    {"rsa2048", CKK_RSA, 2048, 0, "RSA-2048"},
    {"rsa3072", CKK_RSA, 3072, 0, "RSA-3072"},
    {"rsa4096", CKK_RSA, 4096, 0, "RSA-4096"},
    {"ec-p256", CKK_EC, 256, NID_X9_62_prime256v1, "EC P-256"},
    {"ec-p384", CKK_EC, 384, NID_secp384r1, "EC P-384"},
};

nlohmann::json key_object_json(const client::KeyOnKey& k, const std::vector<client::CertOnKey>& certs)
{
    bool has_cert =
        !k.id.empty() && std::any_of(certs.begin(), certs.end(), [&](const auto &c) { return c.id == k.id; });
    return {{"class", k.is_private() ? "private" : "public"},
            {"id", client::to_hex(k.id)},
            {"label", k.label},
            {"type", k.type_name()},
            {"bits", k.bits ? nlohmann::json(k.bits) : nlohmann::json(nullptr)},
            {"curve", k.curve.empty() ? nlohmann::json(nullptr) : nlohmann::json(k.curve)},
            {"has_certificate", has_cert}};
}

std::string key_line(const nlohmann::json& j)
{
    std::string what = j["type"].get<std::string>();
    if (!j["curve"].is_null())
        what += " " + j["curve"].get<std::string>();
    else if (!j["bits"].is_null())
        what += " " + std::to_string(j["bits"].get<int>());
    std::string line = j["class"].get<std::string>() == "private" ? "private  " : "public   ";
    line += what;
    line += std::string(what.size() < 10 ? 10 - what.size() : 1, ' ');
    line += "  id " + (j["id"].get<std::string>().empty() ? std::string("(none)") : j["id"].get<std::string>());
    line += "  '" + shown(j["label"].get<std::string>()) + "'";
    line += j["has_certificate"].get<bool>() ? "  certificate" : "  no certificate";
    return line;
}

// Dots on the terminal every second while a long operation runs.
class Ticker {
public:
    explicit Ticker(const Context& ctx)
        : thread_([&ctx, this](std::stop_token stop) {
              std::unique_lock lock(mutex_);
              while (!cv_.wait_for(lock, stop, std::chrono::seconds(1), [] { return false; }) &&
                     !stop.stop_requested())
                  ctx.progress(".");
          })
    {
    }
    ~Ticker() { thread_.request_stop(); }

private:
    std::mutex mutex_;
    std::condition_variable_any cv_;
    std::jthread thread_; // last: stopped and joined before the others go
};

struct GenerateArgs {
    std::string spec, type, label, id;
    PinSource pin;
};

void generate(Context& ctx, GenerateArgs& a)
{
    const KeyType* kt = nullptr;
    for (const auto& t : key_types)
        if (a.type == t.name)
            kt = &t;
    if (!kt)
        throw Failure(usage, "--type must be one of rsa2048, rsa3072, rsa4096, ec-p256, ec-p384");
    std::optional<client::Bytes> id;
    if (!a.id.empty())
        id = parse_id(a.id, "--id");

    client::KeyInfo k = select_key(ctx, a.spec);
    const CK_MECHANISM_TYPE mech_type = kt->type == CKK_RSA ? CKM_RSA_PKCS_KEY_PAIR_GEN : CKM_EC_KEY_PAIR_GEN;
    CK_MECHANISM_INFO info{};
    CK_RV rv = ctx.module().f()->C_GetMechanismInfo(k.slot, mech_type, &info);
    if (rv == CKR_MECHANISM_INVALID || (rv == CKR_OK && !(info.flags & CKF_GENERATE_KEY_PAIR)))
        throw Failure(failure, std::string("Key '") + k.label() + "' cannot generate " +
                                   (kt->type == CKK_RSA ? "RSA" : "EC") + " keys: choose another --type",
                      CKR_MECHANISM_INVALID);
    if (rv == CKR_OK && kt->type == CKK_RSA && info.ulMaxKeySize &&
        (kt->bits < info.ulMinKeySize || kt->bits > info.ulMaxKeySize))
        throw Failure(failure, std::string("Key '") + k.label() + "' makes RSA keys of " +
                                   std::to_string(info.ulMinKeySize) + " to " + std::to_string(info.ulMaxKeySize) +
                                   " bits, not " + std::to_string(kt->bits) + ": choose another --type",
                      CKR_KEY_SIZE_RANGE);

    auto s = user_session(ctx, k, a.pin, true);
    if (id) {
        auto keys = must(client::read_keys(*s));
        for (const auto& other : keys)
            if (other.id == *id)
                throw Failure(bad_input, "a key with the id " + client::to_hex(*id) + " is already on the Key: choose another "
                                         "--id, or delete that key first with `ukey key delete --id " + client::to_hex(*id) + "`");
    }

    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    CK_ULONG bits = kt->bits;
    CK_BYTE exponent[] = {0x01, 0x00, 0x01};
    client::Bytes params = kt->curve_nid ? client::ec_params_for(kt->curve_nid) : client::Bytes();
    // `strict` also switches off, by name, the uses not asked for (SoftHSM
    // turns unwrap on by default); a token that rejects those gets the plain
    // template on a second try.
    auto templates = [&](bool strict) {
        std::vector<CK_ATTRIBUTE> pub = {{CKA_TOKEN, &yes, sizeof yes},
                                         {CKA_PRIVATE, &no, sizeof no},
                                         {CKA_VERIFY, &yes, sizeof yes}};
        std::vector<CK_ATTRIBUTE> priv = {{CKA_TOKEN, &yes, sizeof yes},     {CKA_PRIVATE, &yes, sizeof yes},
                                          {CKA_SENSITIVE, &yes, sizeof yes}, {CKA_EXTRACTABLE, &no, sizeof no},
                                          {CKA_SIGN, &yes, sizeof yes}};
        if (kt->type == CKK_RSA) {
            pub.push_back({CKA_ENCRYPT, &yes, sizeof yes});
            pub.push_back({CKA_MODULUS_BITS, &bits, sizeof bits});
            pub.push_back({CKA_PUBLIC_EXPONENT, exponent, sizeof exponent});
            priv.push_back({CKA_DECRYPT, &yes, sizeof yes});
        } else {
            pub.push_back({CKA_EC_PARAMS, params.data(), params.size()});
            priv.push_back({CKA_DERIVE, &yes, sizeof yes});
            if (strict) {
                pub.push_back({CKA_ENCRYPT, &no, sizeof no});
                priv.push_back({CKA_DECRYPT, &no, sizeof no});
            }
        }
        if (strict) {
            pub.push_back({CKA_WRAP, &no, sizeof no});
            priv.push_back({CKA_UNWRAP, &no, sizeof no});
        }
        for (auto* t : {&pub, &priv}) {
            if (!a.label.empty())
                t->push_back({CKA_LABEL, a.label.data(), a.label.size()});
            if (id)
                t->push_back({CKA_ID, id->data(), id->size()});
        }
        return std::pair{pub, priv};
    };

    CK_MECHANISM mech{mech_type, nullptr, 0};
    CK_OBJECT_HANDLE hpub = CK_INVALID_HANDLE, hpriv = CK_INVALID_HANDLE;
    ctx.progress(std::string("Generating an ") + kt->display + " key pair on the Key" +
                 (kt->bits >= 3072 && kt->type == CKK_RSA ? " (this can take a minute)" : "") + "...");
    {
        Ticker dots(ctx);
        for (bool strict : {true, false}) {
            auto [pub, priv] = templates(strict);
            rv = s->f()->C_GenerateKeyPair(s->handle(), &mech, pub.data(), pub.size(), priv.data(), priv.size(),
                                           &hpub, &hpriv);
            if (rv != CKR_ATTRIBUTE_TYPE_INVALID && rv != CKR_ATTRIBUTE_VALUE_INVALID &&
                rv != CKR_TEMPLATE_INCONSISTENT)
                break;
        }
    }
    ctx.progress(rv == CKR_OK ? " done\n" : "\n");
    check(rv, std::string("generating the ") + kt->display + " key pair");

    auto destroy_pair = [&] {
        s->f()->C_DestroyObject(s->handle(), hpriv);
        s->f()->C_DestroyObject(s->handle(), hpub);
    };
    client::PKeyPtr public_key;
    for (auto& o : must(client::read_keys(*s)))
        if (o.handle == hpub)
            public_key = std::move(o.public_key);
    if (!public_key) {
        destroy_pair();
        throw Failure(key_error, "the Key generated a key pair but its public key is unreadable, so it was "
                                 "deleted again: retry, or use another Key");
    }
    const bool id_given = id.has_value();
    if (!id) {
        id = client::key_identifier(public_key.get());
        CK_ATTRIBUTE set{CKA_ID, id->data(), id->size()};
        CK_RV r1 = s->f()->C_SetAttributeValue(s->handle(), hpriv, &set, 1);
        CK_RV r2 = r1 == CKR_OK ? s->f()->C_SetAttributeValue(s->handle(), hpub, &set, 1) : r1;
        if (r1 != CKR_OK || r2 != CKR_OK) {
            destroy_pair();
            throw Failure(failure, "the Key does not let ukey set the new key's id (" + client::ckr_name(r2) +
                                       "), so the key was deleted again: give an id with --id HEX",
                          r2);
        }
    }

    auto keys = must(client::read_keys(*s));
    auto certs = must(client::read_certificates(*s));
    nlohmann::json doc = {{"generated", true},       {"type", kt->name},
                          {"id", client::to_hex(*id)},          {"label", a.label},
                          {"id_source", id_given ? "option" : "public_key"},
                          {"keys", nlohmann::json::array()}};
    for (const auto& o : keys)
        if (o.handle == hpriv || o.handle == hpub)
            doc["keys"].push_back(key_object_json(o, certs));
    doc["public_key_pem"] = client::printed([&](BIO* b) { PEM_write_bio_PUBKEY(b, public_key.get()); });
    ctx.print(doc, [&] {
        std::cout << "Generated an " << kt->display << " key pair on Key '" << shown(k.label())
                  << "': id " << client::to_hex(*id);
        if (!a.label.empty())
            std::cout << ", label '" << shown(a.label) << "'";
        std::cout << "\nNext: `ukey csr --key " << client::to_hex(*id)
                  << " --subject /CN=...` makes a certificate request for it.\n";
    });
}

struct ListArgs {
    std::string spec;
    PinSource pin;
};

void list(Context& ctx, ListArgs& a)
{
    client::KeyInfo k = select_key(ctx, a.spec);
    auto s = user_session(ctx, k, a.pin, false);
    auto keys = must(client::read_keys(*s));
    auto certs = must(client::read_certificates(*s));
    // IDs compared as byte strings: vector<unsigned char>'s operator< made
    // GCC 12 -O3 warn (a -Wstringop-overread false positive in its memcmp).
    auto bytes = [](const std::vector<unsigned char>& v) {
        return std::string_view(reinterpret_cast<const char*>(v.data()), v.size());
    };
    std::stable_sort(keys.begin(), keys.end(), [&bytes](const auto& x, const auto& y) {
        return x.id != y.id ? bytes(x.id) < bytes(y.id) : x.is_private() > y.is_private();
    });
    nlohmann::json doc = {{"keys", nlohmann::json::array()}};
    for (const auto& o : keys)
        doc["keys"].push_back(key_object_json(o, certs));
    ctx.print_list(doc, "keys", "No keys on Key '" + shown(k.label()) + "': make one with `ukey key generate --type ...`",
                   key_line);
}

struct DeleteArgs {
    std::string spec, id;
    bool yes = false, force = false;
    PinSource pin;
};

void remove(Context& ctx, DeleteArgs& a)
{
    client::Bytes id = parse_id(a.id, "--id");
    client::KeyInfo k = select_key(ctx, a.spec);
    auto s = user_session(ctx, k, a.pin, true);
    auto keys = must(client::read_keys(*s));
    auto certs = must(client::read_certificates(*s));
    std::vector<const client::KeyOnKey*> doomed;
    for (const auto& o : keys)
        if (o.id == id)
            doomed.push_back(&o);
    if (doomed.empty())
        throw Failure(not_found, "no key on the Key has the id " + client::to_hex(id) + ": list them with `ukey key list`");

    nlohmann::json left = nlohmann::json::array();
    for (const auto& c : certs) {
        if (c.id != id)
            continue;
        auto x = c.parse();
        left.push_back({{"label", c.label},
                        {"id", client::to_hex(c.id)},
                        {"subject", x ? client::name_text(X509_get_subject_name(x.get())) : std::string()}});
    }
    if (!left.empty() && !a.force)
        throw Failure(failure, "the certificate '" + left[0]["label"].get<std::string>() + "' (" +
                                   left[0]["subject"].get<std::string>() + ") still uses the key " + client::to_hex(id) +
                                   ": delete it first with `ukey cert delete --id " + client::to_hex(id) +
                                   "`, or add --force to delete only the key");

    nlohmann::json deleted = nlohmann::json::array();
    for (const auto* o : doomed)
        deleted.push_back(key_object_json(*o, certs));
    confirm_deletion(a.yes, "These keys will be deleted from Key '" + k.label() + "' for good:", deleted, key_line,
                     "Delete them?",
                     "nothing was deleted: deleting a key cannot be undone; confirm on a terminal or with --yes");
    // The private key first: a leftover public key is harmless.
    for (const auto* o : doomed)
        check(s->f()->C_DestroyObject(s->handle(), o->handle),
              std::string("deleting the ") + (o->is_private() ? "private" : "public") + " key " + client::to_hex(id));
    ctx.print({{"deleted", deleted}, {"certificates_left", left}}, [&] {
        std::cout << "Deleted " << doomed.size() << " key object(s) with the id " << client::to_hex(id) << " from Key '"
                  << shown(k.label()) << "'.\n";
        for (const auto& c : left)
            std::cout << "The certificate '" << shown(c["label"].get<std::string>())
                      << "' stays; its key is gone (`ukey cert delete --id " << client::to_hex(id) << "` removes it).\n";
    });
}

} // namespace

void refuse_key_export()
{
    throw Failure(not_exportable,
                  "a private key cannot leave the Key, by design: it was made on the Key and stays there so that "
                  "nobody can copy it; export the certificate instead (`ukey cert export`, it holds no secret), and "
                  "for another computer make a new key on its own Key (`ukey key generate`, then `ukey csr`) and "
                  "have your CA certify it");
}

void add_key(CLI::App& app, Context& ctx)
{
    auto* key = app.add_subcommand("key", "Generate, list or delete key pairs on a Key");
    key->require_subcommand(1);
    const std::string key_help = "the Key: pkcs11: URI, label, serial or slot (default: the only one)";

    static GenerateArgs g;
    auto* gen = key->add_subcommand("generate", "Generate a key pair on the Key (the private key never leaves it)");
    gen->add_option("KEY", g.spec, key_help);
    gen->add_option("--type", g.type, "rsa2048, rsa3072, rsa4096, ec-p256 or ec-p384")
        ->required()
        ->check(CLI::IsMember({"rsa2048", "rsa3072", "rsa4096", "ec-p256", "ec-p384"}));
    gen->add_option("--label", g.label, "a label for both halves of the key pair");
    gen->add_option("--id", g.id,
                    "the key's id in hex (default: the SHA-1 of the public key, as in its certificate's SKI)");
    add_pin_options(gen, g.pin, "pin", "user PIN");
    gen->callback([&ctx] { generate(ctx, g); });

    static ListArgs l;
    auto* ls = key->add_subcommand("list", "List the private and public keys on the Key (needs the PIN)");
    ls->add_option("KEY", l.spec, key_help);
    add_pin_options(ls, l.pin, "pin", "user PIN");
    ls->callback([&ctx] { list(ctx, l); });

    static DeleteArgs d;
    auto* del = key->add_subcommand("delete", "Delete a key pair from the Key (cannot be undone)");
    del->add_option("KEY", d.spec, key_help);
    del->add_option("--id", d.id, "the id of the key pair (see `ukey key list`)")->required();
    del->add_flag("-y,--yes", d.yes, "do not ask for confirmation");
    del->add_flag("--force", d.force, "delete the key even if a certificate on the Key still uses it");
    add_pin_options(del, d.pin, "pin", "user PIN");
    del->callback([&ctx] { remove(ctx, d); });

    // Users ask for it (a .p12 "with the key"): the answer is why not, and
    // what instead, whatever else the command line says.
    auto* exp = key->add_subcommand("export", "Not possible: a private key never leaves the Key (says what to "
                                              "export instead)");
    exp->allow_extras()->fallthrough(false);
    exp->callback([exp, &ctx] {
        for (const auto& arg : exp->remaining()) // the global --json, taken in as an extra
            ctx.json = ctx.json || arg == "--json";
        refuse_key_export();
    });
}

} // namespace ukey::cli
