// The PC/SC side of ukeyd: one thread blocked in SCardGetStatusChange on every
// reader plus \\?PnP?\Notification, woken with SCardCancel. It reports readers
// and cards coming and going, and pcscd going away and coming back, to a sink.
// No polling while nothing happens (docs/ukeyd.md).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace ukey::daemon {

struct PcscEvent {
    enum class Kind {
        up,              // pcscd reachable (first connect, or again after `down`)
        down,            // pcscd not reachable: code/message say why (e.g. 0x8010001D)
        reader_added,    // reader
        reader_removed,  // reader
        reader_unusable, // reader listed but its driver failed: ignored from now on
        card_inserted,   // reader, atr
        card_removed,    // reader
    };
    Kind kind;
    std::string reader;
    std::string atr; // upper-case hex
    long code = 0;   // PC/SC return code for `down`
    std::string message; // plain words for `down`: what it means, what to do
    int64_t time_ms = 0; // CLOCK_REALTIME ms when SCardGetStatusChange returned
};

const char* to_string(PcscEvent::Kind k);

class PcscWatch {
public:
    // Called from the watcher thread, one event at a time, in order. Must not
    // block for long (the daemon writes to a pipe).
    using Sink = std::function<void(PcscEvent)>;

    explicit PcscWatch(Sink sink);
    ~PcscWatch(); // stop()
    PcscWatch(const PcscWatch&) = delete;
    PcscWatch& operator=(const PcscWatch&) = delete;

    void start();
    // Wakes the thread wherever it waits (SCardCancel, or the wake pipe while
    // pcscd is down) and joins it; returns within milliseconds.
    void stop();

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

} // namespace ukey::daemon
