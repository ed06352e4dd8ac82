#include "client/journal.h"

#include "client/state_file.h"
#include "token/files.h"

#include <nlohmann/json.hpp>
#include <openssl/evp.h>

#include <algorithm>

namespace ukey::client {

namespace {

using json = nlohmann::json;

// A journal is a few certificates in base64: 1 MiB is far more than any.
constexpr std::size_t max_journal = 1u << 20;

constexpr const char* step_names[step_count] = {"started",       "key_generated", "request_sent",
                                                "cert_received", "cert_written",  "old_retired"};

Error journal_error(const std::string& what)
{
    return Error{CKR_OK, what};
}

// Reads one field of the parsed document; the first damage found is kept
// in `why` and the rest of the reading is skipped by the caller.
struct Reader {
    const json& doc;
    std::string why;

    const json* field(const char* name, bool required)
    {
        auto it = doc.find(name);
        if (it == doc.end() || it->is_null()) {
            if (required && why.empty())
                why = std::string("it has no ") + name;
            return nullptr;
        }
        return &*it;
    }
    std::string text(const char* name, bool required = false)
    {
        const json* v = field(name, required);
        if (v && !v->is_string()) {
            damaged(name, "is not text");
            return {};
        }
        return v ? v->get<std::string>() : std::string();
    }
    bool flag(const char* name, bool fallback)
    {
        const json* v = field(name, false);
        if (v && !v->is_boolean()) {
            damaged(name, "is not true or false");
            return fallback;
        }
        return v ? v->get<bool>() : fallback;
    }
    // Bytes stored as text: `decode` is from_hex or from_base64.
    Bytes decoded(const json* v, const std::string& name, std::optional<Bytes> (*decode)(std::string_view),
                  const char* what)
    {
        std::optional<Bytes> b;
        if (!v)
            return {};
        if (v->is_string())
            b = decode(v->get<std::string>());
        if (!b) {
            damaged(name, what);
            return {};
        }
        return *b;
    }
    Bytes hex(const json* v, const std::string& name)
    {
        return decoded(v, name, from_hex, "is not a key ID in hex");
    }
    Bytes base64(const json* v, const std::string& name)
    {
        return decoded(v, name, from_base64, "is not base64");
    }
    void damaged(const std::string& name, const char* what)
    {
        if (why.empty())
            why = "its " + name + " " + what;
    }
};

} // namespace

const char* step_name(Step s)
{
    return step_names[static_cast<int>(s)];
}

std::optional<Step> step_named(std::string_view name)
{
    for (int i = 0; i < step_count; ++i)
        if (name == step_names[i])
            return static_cast<Step>(i);
    return std::nullopt;
}

std::string journal_text(const Journal& j)
{
    json steps = json::array();
    for (const auto& s : j.steps)
        steps.push_back({{"step", step_name(s.step)}, {"time", s.time}});
    json doc = {{"version", 1},
                {"operation", j.operation},
                {"key", j.key},
                {"key_label", j.key_label},
                {"ca_url", j.ca_url},
                {"ca_name", j.ca_name ? json(*j.ca_name) : json(nullptr)},
                {"ca_cert", to_base64(j.ca_cert)},
                {"mode", j.rekey ? "rekey" : "same-key"},
                {"keep_old", j.keep_old},
                {"pending_label", j.pending_label},
                {"final_label", j.final_label},
                {"old", nullptr},
                {"old_summary", json::parse(j.old_summary, nullptr, false)},
                {"step", step_name(j.step())},
                {"steps", steps}};
    if (doc["old_summary"].is_discarded())
        doc["old_summary"] = nullptr;
    if (j.old)
        doc["old"] = {{"id", to_hex(j.old->id)}, {"label", j.old->label}, {"cert", to_base64(j.old->cert)}};
    if (j.reached(Step::key_generated))
        doc["new_id"] = to_hex(j.new_id);
    if (!j.transaction_id.empty())
        doc["transaction_id"] = j.transaction_id;
    if (j.reached(Step::cert_received)) {
        doc["cert"] = to_base64(j.cert);
        json chain = json::array();
        for (const auto& c : j.chain)
            chain.push_back(to_base64(c));
        doc["chain"] = chain;
    }
    // ensure_ascii: labels from a Key may hold any bytes; the file stays
    // valid JSON whatever they are.
    return doc.dump(2, ' ', true, json::error_handler_t::replace);
}

Result<Journal> parse_journal(std::string_view text)
{
    json doc = json::parse(text, nullptr, false);
    if (doc.is_discarded() || !doc.is_object())
        return journal_error("it is not a JSON object");
    Journal j;
    Reader r{doc, {}};
    const auto step = step_named(r.text("step", true));
    if (r.why.empty() && !step)
        r.damaged("step", "is not a step ukey knows");
    j.operation = r.text("operation");
    if (j.operation.empty())
        j.operation = "renew";
    j.key = r.text("key");
    j.key_label = r.text("key_label");
    j.ca_url = r.text("ca_url");
    if (r.field("ca_name", false))
        j.ca_name = r.text("ca_name");
    j.ca_cert = r.base64(r.field("ca_cert", false), "ca_cert");
    const std::string mode = r.text("mode");
    j.rekey = mode != "same-key";
    j.keep_old = r.flag("keep_old", false);
    j.pending_label = r.text("pending_label");
    j.final_label = r.text("final_label");
    if (const json* old = r.field("old", false)) {
        if (!old->is_object()) {
            r.damaged("old", "is not an object");
        } else {
            Reader o{*old, {}};
            JournalOld jo;
            jo.id = o.hex(o.field("id", true), "old.id");
            jo.label = o.text("label", true);
            jo.cert = o.base64(o.field("cert", true), "old.cert");
            if (!o.why.empty() && r.why.empty())
                r.why = o.why.rfind("it has no ", 0) == 0 ? "its old has no " + o.why.substr(10) : o.why;
            j.old = std::move(jo);
        }
    }
    if (const json* s = r.field("old_summary", false))
        j.old_summary = s->dump(-1, ' ', true, json::error_handler_t::replace);
    if (const json* steps = r.field("steps", false); steps && steps->is_array()) {
        for (const auto& e : *steps) {
            std::optional<Step> st;
            if (e.is_object() && e.contains("step") && e["step"].is_string())
                st = step_named(e["step"].get<std::string>());
            if (!st) {
                r.damaged("steps", "hold a step ukey does not know");
                break;
            }
            std::string time = e.contains("time") && e["time"].is_string() ? e["time"].get<std::string>() : "";
            j.steps.push_back({*st, time});
        }
    }
    // "step" is the one that counts (the list is the history shown).
    if (step && (j.steps.empty() || j.steps.back().step != *step))
        j.steps.push_back({*step, ""});
    j.new_id = r.hex(r.field("new_id", step && *step >= Step::key_generated), "new_id");
    j.transaction_id = r.text("transaction_id");
    if (step && *step >= Step::cert_received) {
        j.cert = r.base64(r.field("cert", true), "cert");
        if (const json* chain = r.field("chain", false)) {
            if (!chain->is_array())
                r.damaged("chain", "is not a list");
            else
                for (const auto& c : *chain)
                    j.chain.push_back(r.base64(&c, "chain"));
        }
    }
    if (!r.why.empty())
        return journal_error(r.why);
    return j;
}

std::string key_identity(const std::string& backend, const std::string& manufacturer, const std::string& model,
                         const std::string& serial)
{
    return backend + "/" + manufacturer + "/" + model + "/" + serial;
}

std::filesystem::path journal_dir(const std::filesystem::path& state_dir)
{
    return state_dir / "renewal";
}

std::filesystem::path journal_path(const std::filesystem::path& state_dir, const std::string& identity)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_Digest(identity.data(), identity.size(), md, &n, EVP_sha256(), nullptr);
    return journal_dir(state_dir) / (to_hex({md, std::min(n, 16u)}) + ".json");
}

Result<std::optional<std::string>> load_journal(const std::filesystem::path& path)
{
    auto text = read_file_if_exists(path, max_journal);
    if (!text)
        return journal_error("cannot read the renewal journal " + path.string() + ": " + text.error().message);
    return std::move(*text);
}

Result<void> save_journal(const std::filesystem::path& path, const std::string& text)
{
    if (auto e = write_private_file(path, text); !e)
        return journal_error("cannot keep the renewal journal: " + e.error().message);
    return {};
}

Result<void> remove_journal(const std::filesystem::path& path)
{
    if (auto e = remove_private_file(path); !e)
        return journal_error("the renewal journal: " + e.error().message);
    return {};
}

} // namespace ukey::client
