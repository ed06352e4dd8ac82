// Durable per-Key PIN try counters (docs/pin-policy.md).
//
// One file per Key under <state_dir>/pin/, 0600 in 0700 folders. The file
// holds two fixed 256-byte records; each update writes the older one with a
// higher sequence number and one fdatasync, so a crash mid-write leaves the
// previous record intact (a torn write only ever loses an attempt that never
// reached the token). flock() makes every read-modify-write atomic across
// processes and threads. A file is created whole (written under a temporary
// name, then linked into place), so a file that exists but is empty, blank,
// damaged, foreign-owned, too open or of another Key is reported as such,
// and callers fail closed. Only a missing file is fresh.
#pragma once

#include "token/key_id.h"
#include "token/result.h"

#include <chrono>
#include <filesystem>
#include <functional>
#include <string>

namespace ukey {

struct PinCounts {
    unsigned user_left = 6, user_max = 6;
    unsigned so_left = 6, so_max = 6;
    bool user_must_change = false; // a transport PIN is set
    // The Key carried ukey's policy object when last seen (key_policy.h):
    // if it goes missing, the Key is treated as damaged.
    bool policy_on_key = false;
    bool operator==(const PinCounts&) const = default;
};

inline constexpr unsigned min_tries = 1, max_tries = 15;

class PinStore {
public:
    // attempt_wait: how long lock_attempts() waits for another process's
    // attempt ([pin] attempt_wait, Config::pin_attempt_wait).
    PinStore(std::filesystem::path dir, PinCounts defaults, std::chrono::milliseconds attempt_wait);

    // Reads the Key's counts: a missing file gives the defaults. Errors:
    // CKR_PIN_LOCKED for a damaged or unsafe file (fail closed),
    // CKR_FUNCTION_FAILED when there is no state folder and none can be made
    // (see no_state_folder()), or for I/O errors.
    Result<PinCounts> read(const KeyId& key) const;
    // Atomically reads, lets `change` modify, and writes back when it
    // changed; with `sync`, the write is on disk before update returns.
    // `change` returns false to abort without writing.
    Result<PinCounts> update(const KeyId& key, const std::function<bool(PinCounts&)>& change, bool sync);
    // Replaces whatever is there, damaged or not (C_InitToken): a damaged
    // file is removed and written anew.
    Result<PinCounts> reset(const KeyId& key, const PinCounts& fresh);

    // Held across one PIN attempt (take a try, ask the token, settle): only
    // one attempt per Key runs at a time, across processes and threads. The
    // holder's pid is in the lock file while it holds it, so a process that
    // waits in vain can name it.
    class AttemptLock {
    public:
        explicit AttemptLock(int fd) : fd_(fd) {}
        AttemptLock(AttemptLock&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
        AttemptLock(const AttemptLock&) = delete;
        AttemptLock& operator=(const AttemptLock&) = delete;
        ~AttemptLock();

    private:
        int fd_;
    };
    // Waits up to the attempt wait for another process's attempt on the
    // Key, then fails (CKR_FUNCTION_FAILED) naming that process.
    Result<AttemptLock> lock_attempts(const KeyId& key);

    std::filesystem::path path_of(const KeyId& key) const;
    const PinCounts& defaults() const { return defaults_; }

private:
    Result<PinCounts> apply(const KeyId& key, const std::function<bool(PinCounts&)>& change, bool sync);
    // Writes a whole new file under a temporary name and moves it to the
    // Key's path: with `replace`, over whatever is there; else only if
    // nothing is (false: another process created it first).
    Result<bool> install(const KeyId& key, const PinCounts& counts, bool replace);
    Result<void> ensure_dir() const;
    Result<void> ensure_dirs(std::initializer_list<std::filesystem::path> dirs) const;
    // false: the folders do not exist yet but can be made; an error: they
    // are not private, or cannot be made.
    Result<bool> check_dirs() const;

    std::filesystem::path dir_;
    PinCounts defaults_;
    std::chrono::milliseconds attempt_wait_;
};

} // namespace ukey
