#include "key_tracker.h"

namespace ukey::daemon {

using nlohmann::json;

namespace {

// Slot descriptions are 64 bytes at most: a long reader name is cut.
bool names_reader(const std::string& description, const std::string& reader)
{
    return !description.empty() &&
           (description == reader || (description.size() >= 60 && reader.rfind(description, 0) == 0));
}

bool pin_locked(const json& key, const char* which)
{
    return key.contains(which) && key[which].is_object() && key[which].value("locked", false);
}

} // namespace

void KeyTracker::reader_added(const std::string& reader)
{
    readers_[reader] = ReaderState{};
}

bool KeyTracker::reader_removed(const std::string& reader)
{
    if (!readers_.erase(reader))
        return false;
    awaiting_scan_.erase(reader);
    return true;
}

void KeyTracker::reader_unusable(const std::string& reader)
{
    readers_[reader].unusable = true;
}

void KeyTracker::card_inserted(const std::string& reader, const std::string& atr)
{
    ReaderState& r = readers_[reader];
    r.card = true;
    r.atr = atr;
    // A backend slot behind this reader names the Key: wait for the scan,
    // so that one key-inserted carries both the reader and the token.
    if (reader_has_slot(reader))
        awaiting_scan_.insert(reader);
}

void KeyTracker::card_removed(const std::string& reader)
{
    auto it = readers_.find(reader);
    if (it != readers_.end()) {
        it->second.card = false;
        it->second.atr.clear();
    }
    awaiting_scan_.erase(reader);
}

void KeyTracker::forget_readers()
{
    readers_.clear();
    awaiting_scan_.clear();
}

void KeyTracker::scanned(const json& data)
{
    slots_ = data.value("slots", json::array());
    std::map<std::string, json> before;
    before.swap(backend_keys_);
    const auto keys = data.find("keys");
    if (keys != data.end() && keys->is_array())
        for (const auto& k : *keys)
            if (k.is_object() && k.contains("id") && k["id"].is_string())
                backend_keys_[k["id"].get<std::string>()] = k;
    // A slot that answered with an error (no slot information, a token it
    // could not read) says nothing about which Key it holds: the Keys of its
    // backend that the last scan had stay, so that a passing error is not a
    // removal (subscribers, hooks and every application's sessions would
    // take it for a pulled Key).
    std::set<std::string> unsure;
    bool unsure_all = false;
    for (const auto& s : slots_) {
        if (!s.is_object() || !s.contains("error"))
            continue;
        const auto b = s.find("backend");
        if (b != s.end() && b->is_string())
            unsure.insert(b->get<std::string>());
        else
            unsure_all = true;
    }
    for (auto& [id, k] : before)
        if (!backend_keys_.count(id) && (unsure_all || unsure.count(k.value("backend", ""))))
            backend_keys_.emplace(id, std::move(k));
}

void KeyTracker::scan_finished()
{
    awaiting_scan_.clear();
}

bool KeyTracker::reader_has_slot(const std::string& reader) const
{
    for (const auto& s : slots_)
        if (names_reader(s.value("description", ""), reader))
            return true;
    return false;
}

std::string KeyTracker::reader_of(const json& key) const
{
    const std::string d = key.value("slot_description", "");
    for (const auto& [name, r] : readers_)
        if (names_reader(d, name))
            return name;
    return {};
}

json KeyTracker::card_key(const std::string& reader, const ReaderState& r) const
{
    json key{{"id", "pcsc:" + reader}, {"source", "pcsc"}, {"reader", reader}, {"atr", r.atr},
             {"certificates", json::array()}};
    bool uninitialised = false;
    for (const auto& s : slots_)
        if (s.value("description", "") == reader && s.value("token", false) && !s.value("initialized", true))
            uninitialised = true;
    if (uninitialised) {
        key["initialized"] = false;
        key["note"] = "the Key is not initialised: initialise it with `ukey init`";
    } else {
        key["note"] = "a card is in the reader but no configured backend shows it as a token: "
                      "install the Key's PKCS#11 module and add it as a [[backend]] in the config";
    }
    return key;
}

KeyTracker::Changes KeyTracker::reconcile()
{
    std::map<std::string, json> want;
    std::set<std::string> claimed;
    for (const auto& [id, k] : backend_keys_) {
        json key = k;
        const std::string reader = reader_of(k);
        if (!reader.empty()) {
            const ReaderState& r = readers_.at(reader);
            if (!r.card)
                continue; // the card is out: its token cannot be there, whatever the last scan said
            key["reader"] = reader;
            key["atr"] = r.atr;
            claimed.insert(reader);
        }
        want[id] = std::move(key);
    }
    for (const auto& [name, r] : readers_)
        if (r.card && !claimed.count(name) && !awaiting_scan_.count(name))
            want["pcsc:" + name] = card_key(name, r);

    Changes ch;
    for (const auto& [id, old] : published_)
        if (!want.count(id))
            ch.removed.push_back(old);
    for (const auto& [id, key] : want) {
        auto it = published_.find(id);
        ch.present.push_back(Present{key, it == published_.end() ? std::nullopt : std::optional<json>(it->second)});
    }
    published_ = std::move(want);
    return ch;
}

json KeyTracker::published_list() const
{
    json keys = json::array();
    for (const auto& [id, k] : published_)
        keys.push_back(k);
    return keys;
}

PinLockWatch::Verdict PinLockWatch::check(const json& key, long long scans)
{
    Verdict v;
    const std::string id = key.value("id", "");
    for (const char* which : {"user_pin", "so_pin"}) {
        const std::string kw = id + "/" + which;
        if (!pin_locked(key, which)) {
            seen_.erase(kw);
            announced_.erase(kw);
            continue;
        }
        if (announced_.count(kw))
            continue;
        auto seen = seen_.find(kw);
        if (seen == seen_.end()) {
            seen_[kw] = scans;
            v.confirm = true;
            continue;
        }
        if (seen->second == scans)
            continue; // no newer scan yet
        seen_.erase(seen);
        announced_.insert(kw);
        v.announce.push_back(which);
    }
    return v;
}

void PinLockWatch::forget(const std::string& key_id)
{
    for (const char* which : {"/user_pin", "/so_pin"}) {
        seen_.erase(key_id + which);
        announced_.erase(key_id + which);
    }
}

} // namespace ukey::daemon
