// The one slot list the application sees: every backend's slots, under
// stable IDs (slot_id.h). An ID stays resolvable for the module's life: a
// Key's ID reports "token not present" while the Key is out and finds it
// again when it comes back; a backend slot's own ID always names that slot
// (which is also what keeps an ID usable across C_InitToken, when the token
// gets a serial and so a Key ID of its own).
#pragma once

#include "token/backend.h"
#include "token/key_id.h"
#include "token/lock.h"

#include <map>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

namespace ukey {

struct SlotEntry {
    Backend* backend = nullptr;
    CK_SLOT_ID backend_slot = 0;
    std::string identity;
    bool names_key = false; // a Key's ID (else: a backend slot's)
    KeyId key;              // when names_key
    bool present = false;   // listed by the last refresh
    bool out_unsure = false; // a Key left out on an error: its sessions wait for a clear answer
    CK_SLOT_INFO info{};    // as of the last refresh
};

// C_GetTokenInfo that does not believe one odd answer: some backends (SoftHSM2
// under load from other processes) now and then answer CKR_OK with blank
// fields. With `expect`, a read matching that identity is taken at once;
// otherwise reads repeat until two in a row agree (at most 4 reads).
CK_RV read_token_info(const Backend& b, CK_SLOT_ID backend_slot, CK_TOKEN_INFO& info,
                      const std::string* expect = nullptr);

class SlotTable {
public:
    explicit SlotTable(const MutexCallbacks* cb) : lock_(cb), refresh_lock_(cb) {}

    // Asks every backend for its slots and rebuilds the current list.
    // Returns the Keys that were present and are not now (as they were).
    std::vector<SlotEntry> refresh(const std::vector<std::unique_ptr<Backend>>& backends);
    // The current IDs, in backend order; with token_present, only slots
    // holding a token.
    std::vector<CK_SLOT_ID> current(bool token_present) const;
    std::optional<SlotEntry> find(CK_SLOT_ID id) const;
    // Marks a Key's ID absent after we saw another token in its slot (or one
    // odd answer): the next refresh decides whether its sessions end.
    void mark_absent(CK_SLOT_ID id);
    // The daemon says this Key is out. Where its backend, which looks only
    // at C_Initialize (SoftHSM2 and another process's deleted token), still
    // shows it, it is listed as out until the backend no longer shows it,
    // is initialised again, or the daemon says it is back (forget_gone).
    // Returns the entry (as it was), if the ID names a Key.
    std::optional<SlotEntry> mark_gone(CK_SLOT_ID id);
    // The daemon says the Key is back: listed again if its backend shows it.
    void forget_gone(CK_SLOT_ID id);
    // The backend was initialised again: its own list is the truth again.
    void forget_gone(const Backend* b);
    // The present/absent state of every ID ever seen.
    std::map<CK_SLOT_ID, bool> presence() const;

private:
    struct Seen {
        Backend* backend;
        CK_SLOT_ID backend_slot;
        std::string identity;
        bool names_key;
        CK_SLOT_INFO info;
        KeyId key;
    };
    // Adds b's slots to out; false if b gave no list. `unsure`: its slots
    // that answered with an error rather than saying what they hold.
    static bool scan(Backend& b, std::vector<Seen>& out, std::set<CK_SLOT_ID>& unsure);

    mutable RwLock lock_;
    RwLock refresh_lock_;
    std::unordered_map<CK_SLOT_ID, SlotEntry> entries_; // every ID seen since C_Initialize
    std::vector<CK_SLOT_ID> order_;                     // the current list
    // mark_gone's identities, with their backend; a few at most (bounded).
    std::map<std::string, const Backend*> gone_;
    static constexpr std::size_t max_gone = 256;
};

} // namespace ukey
