// Distinguished names: parsed from the two text forms people type, shown
// in RFC 2253 form (see names.h).
#include "client/names.h"

#include "client/x509.h"

#include <openssl/err.h>
#include <openssl/objects.h>

#include <algorithm>
#include <cctype>

namespace ukey::client {

Result<X509NamePtr> parse_name(const std::string& text)
{
    struct Ava {
        std::string type, value;
    };
    std::vector<std::vector<Ava>> rdns;
    const bool slash = !text.empty() && text[0] == '/';
    const char sep = slash ? '/' : ',';

    // Split into AVAs, honouring backslash escapes (RFC 4514 \XX included).
    std::vector<Ava> current;
    std::string field;
    bool escaped_any = false;
    auto finish_ava = [&](bool new_rdn) -> std::optional<Error> {
        std::string f = field;
        field.clear();
        auto eq = f.find('=');
        if (eq == std::string::npos)
            return x509_error("'" + f + "' in the name has no '=': write it as TYPE=value, e.g. /CN=Alice/O=Example");
        Ava a{f.substr(0, eq), f.substr(eq + 1)};
        auto trim = [](std::string& s) {
            while (!s.empty() && s.front() == ' ')
                s.erase(s.begin());
            while (!s.empty() && s.back() == ' ')
                s.pop_back();
        };
        trim(a.type);
        if (!slash)
            trim(a.value);
        if (a.type.empty())
            return x509_error("an attribute in the name has no type: write it as TYPE=value, e.g. CN=Alice");
        current.push_back(a);
        if (new_rdn) {
            rdns.push_back(std::move(current));
            current.clear();
        }
        return std::nullopt;
    };
    std::size_t i = slash ? 1 : 0;
    if (slash && text.size() == 1)
        return x509_error("the name is empty: give at least /CN=...");
    for (; i <= text.size(); ++i) {
        if (i == text.size() || text[i] == sep || (!slash && text[i] == ';') || (!slash && text[i] == '+')) {
            bool plus = i < text.size() && text[i] == '+';
            if (field.empty() && !escaped_any && i == text.size() && slash)
                break; // a trailing slash
            if (auto e = finish_ava(!plus))
                return *e;
            escaped_any = false;
            continue;
        }
        if (text[i] == '\\' && i + 1 < text.size()) {
            ++i;
            auto hexval = [](char c) { return std::isxdigit(static_cast<unsigned char>(c)); };
            if (!slash && i + 1 < text.size() && hexval(text[i]) && hexval(text[i + 1])) {
                field += static_cast<char>(std::stoi(text.substr(i, 2), nullptr, 16));
                ++i;
            } else {
                field += text[i];
            }
            escaped_any = true;
            continue;
        }
        field += text[i];
    }
    if (rdns.empty())
        return x509_error("the name is empty: give at least CN=...");
    if (!slash)
        std::reverse(rdns.begin(), rdns.end()); // RFC 4514 lists the most specific RDN first

    X509NamePtr name(X509_NAME_new());
    for (const auto& rdn : rdns) {
        bool first = true;
        for (const auto& a : rdn) {
            if (a.value.empty())
                return x509_error("the name's " + a.type + " has no value");
            if (X509_NAME_add_entry_by_txt(name.get(), a.type.c_str(), MBSTRING_UTF8,
                                           reinterpret_cast<const unsigned char*>(a.value.data()),
                                           static_cast<int>(a.value.size()), -1, first ? 0 : -1) != 1) {
                bool known = OBJ_txt2nid(a.type.c_str()) != NID_undef;
                ERR_clear_error();
                if (!known)
                    return x509_error("'" + a.type + "' in the name is not an attribute type OpenSSL knows: use CN, O, "
                               "OU, C, ST, L, emailAddress, serialNumber or a dotted OID");
                return x509_error("the value '" + a.value + "' is not allowed for " + a.type +
                           (OBJ_txt2nid(a.type.c_str()) == NID_countryName
                                ? ": use a two-letter country code such as DE"
                                : ": check its length and characters"));
            }
            first = false;
        }
    }
    return name;
}

std::string name_text(const X509_NAME* n)
{
    return printed([&](BIO* b) { X509_NAME_print_ex(b, n, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB); });
}

std::string common_name(const X509_NAME* n)
{
    int last = -1, i = -1;
    while ((i = X509_NAME_get_index_by_NID(n, NID_commonName, i)) >= 0)
        last = i;
    if (last < 0)
        return {};
    return utf8_text(X509_NAME_ENTRY_get_data(X509_NAME_get_entry(n, last)));
}

} // namespace ukey::client
