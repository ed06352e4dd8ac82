// P12 with --url: Chromium's AutoSelectCertificateForUrls policy picks the
// certificate for the site by itself; users never see a choice, so a rule
// that fits none of the Key's certificates (or the wrong one) is invisible
// to them.
#include "doctor.h"

#include "client/cert_details.h"
#include "token/escape.h"

#include <algorithm>

namespace ukey::cli::doctor {

namespace {

std::string describe(const char* what, const std::optional<PrincipalFilter>& p)
{
    if (!p)
        return {};
    std::string s;
    auto add = [&](const char* field, const std::optional<std::string>& v) {
        if (v)
            s += std::string(s.empty() ? "" : ", ") + field + " '" + escape::printable(*v) + "'";
    };
    add("CN", p->cn);
    add("L", p->l);
    add("O", p->o);
    add("OU", p->ou);
    return s.empty() ? std::string() : std::string(what) + " " + s;
}

std::string filters(const std::vector<AutoSelectRule>& rules)
{
    std::string s;
    for (const auto& r : rules) {
        std::string one = describe("issuer", r.issuer);
        const std::string subject = describe("subject", r.subject);
        one += one.empty() || subject.empty() ? subject : " and " + subject;
        s += std::string(s.empty() ? "" : "; or ") + (one.empty() ? "any certificate" : one);
    }
    return s;
}

} // namespace

UKEY_DOCTOR_KEY_CHECK(auto_select_other_cert, "P12.auto-select-other-cert", "P12",
                      "with --url: Chromium's AutoSelectCertificateForUrls policy picks a certificate for the site "
                      "by itself, and none (or more than one) of the Key's",
                      "the policy's filter names another issuer or subject than the Key's certificates (a new CA, a "
                      "renewed certificate with other details)",
                      "ask whoever manages the policy (/etc/chromium/policies/managed) to fit its filter to the Key's "
                      "certificate")
{
    if (!f.server || f.server->auto_select.empty())
        return;
    const auto& rules = f.server->auto_select;
    std::vector<std::string> picked;
    int candidates = 0;
    for (const auto& c : user_certs(k)) {
        const auto eku = client::cert_details(c.x.get()).ext_key_usage;
        if (!eku.empty() && std::find(eku.begin(), eku.end(), "clientAuth") == eku.end())
            continue;
        ++candidates;
        if (std::any_of(rules.begin(), rules.end(), [&](const auto& r) { return cert_matches(r, c.x.get()); }))
            picked.push_back("'" + c.label + "'");
    }
    if (candidates == 0 || picked.size() == 1)
        return;
    const std::string url = escape::printable(f.server->url);
    const std::string file = escape::printable(rules.front().file);
    if (picked.empty()) {
        out.push_back(finding(auto_select_other_cert, Severity::warning, &k,
                              "Chromium's policy " + file + " picks the certificate for " + url +
                                  " by itself, among those with " + filters(rules) +
                                  "; none of this Key's certificates has that, so Chromium picks another one or "
                                  "none there, without asking",
                              "ask whoever manages the computer's Chromium policy to fit its "
                              "AutoSelectCertificateForUrls filter to this Key's certificate"));
        return;
    }
    std::string list;
    for (const auto& p : picked)
        list += (list.empty() ? "" : ", ") + p;
    out.push_back(finding(auto_select_other_cert, Severity::warning, &k,
                          "Chromium's policy " + file + " picks the certificate for " + url +
                              " by itself and several of this Key's fit it (" + list +
                              "): it takes one of them without asking, maybe not the right one",
                          "delete the certificates no longer used (" + command(f, k, "ukey cert delete --id ID") +
                              "), or have the policy's filter narrowed"));
}

} // namespace ukey::cli::doctor
