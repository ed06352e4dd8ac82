// What the `ukey cert` commands and the renewal's output share: the JSON
// of a certificate, its one-line text, selecting certificates by --id and
// --label (docs/cli.md has the schema).
#pragma once

#include "cli.h"
#include "client/certs.h"

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace ukey::cli {

extern const std::string key_help;

// null for "", else the text.
nlohmann::json opt(const std::string& s);
bool has_key_with_id(const std::vector<client::KeyOnKey>& keys, const client::Bytes& id);
// "user", "authority" or "other" (CKA_CERTIFICATE_CATEGORY, guessed when 0).
std::string category_name(CK_ULONG category, bool has_key, bool is_ca);

// The summary of one certificate (parsed or not): the "cert" of docs/cli.md.
nlohmann::json cert_json(X509* x, const std::string* label, const client::Bytes* id, CK_ULONG category,
                         bool has_key);
nlohmann::json cert_json(const client::CertOnKey& c, const std::vector<client::KeyOnKey>& keys);
// The renewal's shorter summary: label, id, subject, issuer, serial,
// not_before, not_after, days_left.
nlohmann::json cert_summary(X509* x, const std::string& label, const client::Bytes& id);

// "12 days left", "EXPIRED 3 days ago", ...
std::string days_text(const nlohmann::json& j);
// One line of `ukey cert list`.
std::string cert_line(const nlohmann::json& j);

// The certificates selected by --id / --label (or the only one).
std::vector<const client::CertOnKey*> select_certs(const std::vector<client::CertOnKey>& certs,
                                                   const std::string& id_text, const std::string& label);
const client::CertOnKey& select_one(const std::vector<client::CertOnKey>& certs, const std::string& id_text,
                                    const std::string& label);

// Every certificate in the file at `path` ("-": standard input), or a
// Failure (bad_input) saying why not.
std::vector<client::X509Ptr> load_file(const std::string& path);

// `cert write` (cmd_cert_write.cpp) and `cert superseded` (cmd_superseded.cpp)
// under `cert`.
void add_cert_write(CLI::App* cert, Context& ctx);
void add_superseded(CLI::App* cert, Context& ctx);

// `key export` and `cert export --with-key`: the private key cannot leave
// the Key; what to export instead (cmd_key.cpp).
[[noreturn]] void refuse_key_export();

} // namespace ukey::cli
