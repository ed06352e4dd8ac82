// The browsers' system-wide policies that `ukey browser --system` and
// `--auto-select` write (as root): Firefox's policies.json, whose
// SecurityDevices policy loads ukey's module in every profile of every user,
// and Chromium's managed AutoSelectCertificateForUrls, which picks a site's
// client certificate by a filter on its issuer or subject instead of asking
// (or guessing wrong when several Keys are present: P13). Other policies in
// those files are kept; a file that is not valid JSON is refused, never
// overwritten.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace ukey::cli {

// Where Firefox (and Debian's firefox-esr) read system policies on Linux,
// and the file of Chromium's managed policies that ukey owns.
inline constexpr const char* firefox_policies = "/etc/firefox/policies/policies.json";
inline constexpr const char* chromium_auto_select = "/etc/chromium/policies/managed/ukey-auto-select.json";

// How policies.json names ukey's module: "enabled" (SecurityDevices.Add.ukey
// is `module`), "stale" (another path), "disabled".
std::string firefox_state(const std::string& module);
// Adds (enable) or removes ukey from SecurityDevices.Add, and keeps
// SecurityDevices.Delete saying the opposite (Firefox then also removes it
// from profiles that had it). Returns whether the file changed. Throws a
// Failure naming the file when it cannot be read, parsed or written.
bool set_firefox(const std::string& module, bool enable);

// One AutoSelectCertificateForUrls rule of ukey's file.
struct AutoSelect {
    std::string pattern; // "https://bank.example.cn:443"
    std::string field;   // "ISSUER" or "SUBJECT"
    std::string cn;      // the name's CN that the certificate must have
    nlohmann::json to_json() const;
};
// The pattern for a URL: "https://HOST[:PORT]" (path and query dropped).
// Throws a usage Failure for anything but an https URL with a host.
std::string auto_select_pattern(const std::string& url);
// ukey's rules (those of its own file).
std::vector<AutoSelect> auto_select_rules();
// Adds `rule`, replacing ukey's rule for the same pattern; whether it changed.
bool set_auto_select(const AutoSelect& rule);
// Removes ukey's rule for `pattern` (every rule when empty); whether any was.
bool remove_auto_select(const std::string& pattern);

} // namespace ukey::cli
