// Certificates as the `ukey cert` commands show them (see cert_common.h).
#include "cert_common.h"

#include "token/files.h"
#include "token/times.h"

#include <algorithm>
#include <unistd.h>

namespace ukey::cli {

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
    j["not_before"] = d.not_before ? nlohmann::json(iso8601(*d.not_before)) : nlohmann::json(nullptr);
    j["not_after"] = d.not_after ? nlohmann::json(iso8601(*d.not_after)) : nlohmann::json(nullptr);
    j["days_left"] = d.not_after ? nlohmann::json(days_until(*d.not_after, now)) : nlohmann::json(nullptr);
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

nlohmann::json cert_summary(X509* x, const std::string& label, const client::Bytes& id)
{
    client::CertDetails d = client::cert_details(x);
    const std::time_t now = std::time(nullptr);
    using json = nlohmann::json;
    return {{"label", label},
            {"id", client::to_hex(id)},
            {"subject", d.subject},
            {"issuer", d.issuer},
            {"serial", d.serial},
            {"not_before", d.not_before ? json(iso8601(*d.not_before)) : json(nullptr)},
            {"not_after", d.not_after ? json(iso8601(*d.not_after)) : json(nullptr)},
            {"days_left", d.not_after ? json(days_until(*d.not_after, now)) : json(nullptr)}};
}

std::vector<client::X509Ptr> load_file(const std::string& path)
{
    // Certificate files are small; 64 MiB bounds a wrong path to a huge file.
    constexpr std::size_t max_size = 64u << 20;
    auto bytes = path == "-" ? read_fd(STDIN_FILENO, max_size) : read_file(path, max_size);
    if (!bytes)
        throw Failure(bad_input,
                      "cannot read " + path + ": " + bytes.error().message + "; check the path and its permissions");
    auto certs = client::load_certificates(as_bytes(*bytes));
    if (!certs)
        throw Failure(bad_input, path + " is not a certificate file: " + certs.error().message +
                                     "; give a PEM, DER or PKCS#7 (.p7b) file");
    return std::move(*certs);
}

} // namespace ukey::cli
