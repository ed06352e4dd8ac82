#include "client/refusal.h"

#include "client/state_file.h"
#include "token/files.h"

#include <nlohmann/json.hpp>


namespace ukey::client {

namespace {

using nlohmann::json;

constexpr std::size_t max_refusal = 16 * 1024;
constexpr std::size_t max_field = 1024;

Error refusal_error(const std::string& what)
{
    return Error{CKR_OK, what};
}

} // namespace

std::filesystem::path refusal_path(const std::filesystem::path& journal)
{
    return journal.parent_path().parent_path() / "ca-refusals" / journal.filename();
}

std::string refusal_text(const Refusal& r)
{
    json j = {{"time", int64_t(r.time)},       {"operation", r.operation},     {"ca", r.ca},
              {"fail_info", r.fail_info},      {"fail_text", r.fail_text},     {"cert_serial", r.cert_serial},
              {"cert_label", r.cert_label}};
    return j.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
}

Result<Refusal> parse_refusal(std::string_view text)
{
    json j = json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.is_object())
        return refusal_error("it is not a JSON object");
    Refusal r;
    auto str = [&](const char* k, std::string& out) -> bool {
        auto it = j.find(k);
        if (it == j.end() || !it->is_string() || it->get_ref<const std::string&>().size() > max_field)
            return false;
        out = it->get<std::string>();
        return true;
    };
    auto t = j.find("time");
    auto fi = j.find("fail_info");
    if (t == j.end() || !t->is_number_integer() || t->get<int64_t>() < 0)
        return refusal_error("its time is not a date");
    if (fi == j.end() || !fi->is_number_integer() || fi->get<int64_t>() < -1 || fi->get<int64_t>() > 4)
        return refusal_error("its fail_info is not a SCEP failInfo");
    r.time = static_cast<std::time_t>(t->get<int64_t>());
    r.fail_info = static_cast<int>(fi->get<int64_t>());
    for (auto [k, out] : {std::pair{"operation", &r.operation}, std::pair{"ca", &r.ca},
                          std::pair{"fail_text", &r.fail_text}, std::pair{"cert_serial", &r.cert_serial},
                          std::pair{"cert_label", &r.cert_label}})
        if (!str(k, *out))
            return refusal_error(std::string("its ") + k + " is missing or not text");
    if (r.operation != "renew" && r.operation != "enroll")
        return refusal_error("its operation is neither renew nor enroll");
    return r;
}

Result<std::optional<Refusal>> load_refusal(const std::filesystem::path& path)
{
    auto text = read_file_if_exists(path, max_refusal);
    if (!text)
        return refusal_error("cannot read " + path.string() + ": " + text.error().message);
    if (!*text)
        return std::optional<Refusal>{};
    auto r = parse_refusal(**text);
    if (!r)
        return refusal_error(path.string() + " is damaged: " + r.error().message);
    return std::optional<Refusal>{std::move(*r)};
}

Result<void> save_refusal(const std::filesystem::path& path, const Refusal& r)
{
    if (auto e = write_private_file(path, refusal_text(r)); !e)
        return refusal_error("cannot keep the CA's refusal: " + e.error().message);
    return {};
}

Result<void> remove_refusal(const std::filesystem::path& path)
{
    return remove_private_file(path);
}

} // namespace ukey::client
