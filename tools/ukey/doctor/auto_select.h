// Chromium's AutoSelectCertificateForUrls policy (P12 with --url): for
// sites whose URL matches a pattern, Chromium picks the client certificate
// by itself among those matching a filter on issuer and subject, without
// asking. Read from the managed policy folders, which only root writes.
#pragma once

#include <openssl/x509.h>

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace ukey::cli::doctor {

// Where Chromium and Chrome read managed policies on Linux. Fixed at build
// time: what Chromium does is decided by these files, not by anything the
// doctor's caller could point it to.
inline constexpr const char* chromium_policy_dirs[] = {"/etc/chromium/policies/managed",
                                                       "/etc/opt/chrome/policies/managed"};

// The fields of a name the filter may require ("CN", "L", "O", "OU"):
// CN and L equal, O and OU one of the name's.
struct PrincipalFilter {
    std::optional<std::string> cn, l, o, ou;
};

struct AutoSelectRule {
    std::string file;    // the policy file (for the finding)
    std::string pattern; // a content-settings pattern: "https://[*.]example.com"
    std::optional<PrincipalFilter> issuer, subject; // none: any certificate
};

// The rules of one policy file's JSON text (`{"AutoSelectCertificateForUrls":
// ["{\"pattern\": ..., \"filter\": {...}}", ...]}`); entries that do not
// parse are left out, as Chromium does.
std::vector<AutoSelectRule> parse_auto_select(const std::string& file, std::string_view text);
// The rules of every *.json file in `dirs` (64 files, 1 MiB each at most).
std::vector<AutoSelectRule> read_auto_select(std::span<const char* const> dirs);

// Whether an https:// URL is one the pattern covers: scheme ("*" or
// omitted: any), host ("[*.]" covers subdomains, "*" any), port (omitted:
// the scheme's default; "*" or no scheme: any); the path is not compared.
bool url_matches(const std::string& pattern, const std::string& url);
// Whether the certificate passes the rule's filter.
bool cert_matches(const AutoSelectRule& rule, X509* cert);

} // namespace ukey::cli::doctor
