// What ukeyd knows of Keys: the PC/SC readers and their cards, what the last
// good backend scan found, and the Keys subscribers were last told about.
// reconcile() merges the two sources into the Keys present now and says
// what changed since it was last asked (docs/ukeyd.md, "Events"): a card
// behind a backend's slot is one Key, named by the backend; a card no
// backend shows is a Key of its own ("source": "pcsc").
//
// Keys are the daemon's Key objects (docs/ukeyd.md, "Key object"): the JSON
// the scanner child printed, plus the reader and ATR when PC/SC sees the
// card. They stay JSON, as subscribers get them.
#pragma once

#include <nlohmann/json.hpp>

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace ukey::daemon {

struct ReaderState {
    bool card = false;
    std::string atr; // of the card, while one is in
    bool unusable = false; // pcscd lists it, but its driver failed
};

class KeyTracker {
public:
    using json = nlohmann::json;

    // A Key present after reconcile(), and what subscribers had been told
    // of it before (nullopt: it is new).
    struct Present {
        json key;
        std::optional<json> before;
    };
    struct Changes {
        std::vector<json> removed;    // in Key ID order
        std::vector<Present> present; // in Key ID order
    };

    // PC/SC.
    void reader_added(const std::string& reader);
    // False if the reader was not known.
    bool reader_removed(const std::string& reader);
    void reader_unusable(const std::string& reader);
    void card_inserted(const std::string& reader, const std::string& atr);
    void card_removed(const std::string& reader);
    // pcscd is no longer watched.
    void forget_readers();

    // A good scan ({"slots": [...], "keys": [...]}, ukeyd --scan); a failed
    // one changes nothing (a broken scan is not a removal).
    void scanned(const json& data);
    // Every scan, good or not, ends the wait for cards that a backend
    // should name (card_inserted).
    void scan_finished();

    Changes reconcile();

    const std::map<std::string, ReaderState>& readers() const { return readers_; }
    const json& slots() const { return slots_; }
    const std::map<std::string, json>& published() const { return published_; }
    json published_list() const;

private:
    // The reader whose name a backend slot's description holds, if any.
    std::string reader_of(const json& key) const;
    bool reader_has_slot(const std::string& reader) const;
    json card_key(const std::string& reader, const ReaderState& r) const;

    std::map<std::string, ReaderState> readers_;
    json slots_ = json::array();              // from the last good scan
    std::map<std::string, json> backend_keys_; // by Key ID, from the last good scan
    std::map<std::string, json> published_;    // the Keys subscribers were told about
    std::set<std::string> awaiting_scan_;      // readers whose new card a backend should name first
};

// Which PIN locks of the Keys present to announce (pin-locked). A lock must
// show in two scans in a row: a token read while another process is still
// creating it can look locked for a moment.
class PinLockWatch {
public:
    struct Verdict {
        std::vector<std::string> announce; // "user_pin", "so_pin": newly confirmed locks
        bool confirm = false;              // a lock seen first: scan again at once
    };
    // `scans`: how many scans have finished, telling a newer scan from the same.
    Verdict check(const nlohmann::json& key, long long scans);
    // The Key is gone: a lock seen again later is announced again.
    void forget(const std::string& key_id);

private:
    std::map<std::string, long long> seen_; // "<key id>/user_pin" → the scan count it was first seen at
    std::set<std::string> announced_;
};

} // namespace ukey::daemon
