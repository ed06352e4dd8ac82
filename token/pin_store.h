// Durable per-Key PIN try counters (docs/pin-policy.md).
//
// One file per Key under <state_dir>/pin/, 0600 in 0700 folders. The file
// holds two fixed 256-byte records; each update writes the older one with a
// higher sequence number and one fdatasync, so a crash mid-write leaves the
// previous record intact (a torn write only ever loses an attempt that never
// reached the token). flock() makes every read-modify-write atomic across
// processes and threads. A file that is damaged, foreign-owned, too open or
// belongs to another Key is reported as such, and callers fail closed.
#pragma once

#include "key_id.h"
#include "result.h"

#include <filesystem>
#include <functional>
#include <string>

namespace ukey {

struct PinCounts {
    unsigned user_left = 6, user_max = 6;
    unsigned so_left = 6, so_max = 6;
    bool user_must_change = false; // a transport PIN is set
    bool operator==(const PinCounts&) const = default;
};

inline constexpr unsigned min_tries = 1, max_tries = 15;

class PinStore {
public:
    PinStore(std::filesystem::path dir, PinCounts defaults);

    // Reads the Key's counts: a missing file gives the defaults.
    Result<PinCounts> read(const KeyId& key) const;
    // Atomically reads, lets `change` modify, and writes back when it
    // changed; with `sync`, the write is on disk before update returns.
    // `change` returns false to abort without writing.
    Result<PinCounts> update(const KeyId& key, const std::function<bool(PinCounts&)>& change, bool sync);
    // Replaces whatever is there, damaged or not (C_InitToken): a damaged
    // file is removed and written anew.
    Result<PinCounts> reset(const KeyId& key, const PinCounts& fresh);

    // Held across one PIN attempt (take a try, ask the token, settle): only
    // one attempt per Key runs at a time, across processes and threads.
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
    Result<AttemptLock> lock_attempts(const KeyId& key);

    std::filesystem::path path_of(const KeyId& key) const;
    const PinCounts& defaults() const { return defaults_; }

private:
    Result<PinCounts> apply(const KeyId& key, const std::function<bool(PinCounts&)>& change, bool sync,
                            bool ignore_damage);
    Result<bool> ensure_dir() const;
    Result<bool> ensure_dirs(std::initializer_list<std::filesystem::path> dirs) const;
    // false: the folders do not exist yet; an error: they are not private.
    Result<bool> check_dirs() const;

    std::filesystem::path dir_;
    PinCounts defaults_;
};

} // namespace ukey
