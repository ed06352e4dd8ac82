// The PC/SC side of ukeyd: one thread blocked in SCardGetStatusChange on every
// reader plus \\?PnP?\Notification, woken with SCardCancel. It reports readers
// and cards coming and going, and pcscd going away and coming back, to a sink.
// No polling while nothing happens (docs/ukeyd.md).
//
// The order of events, and what is implied:
//  - On (re)connecting to pcscd: `up`, then `reader_added` for every reader,
//    then `card_inserted` for every card already in.
//  - When pcscd goes away: `down` once (code, plain message), then
//    `reader_removed` for every reader it knew. There is no `card_removed`
//    for the cards in those readers: `reader_removed` implies it, here and
//    whenever a reader goes away with a card in. While pcscd stays away
//    nothing more is reported; when it answers again, `up` and the rest as
//    on the first connect.
//  - If pcscd is not running at start: `down` (0x8010001D) and no `up`.
//  - A card swapped between two wake-ups gives `card_removed` then
//    `card_inserted`. The same card may be reported again after a pcscd
//    restart (tests/pcsc/README.md: "An unexplained flap").
//  - `reader_unusable`: the reader stays listed but is ignored (its state
//    would wake us at once, forever) until it is removed.
//
// Waiting for pcscd costs nothing: inotify on the folder of its socket
// ($PCSCLITE_CSOCK_NAME, else /run/pcscd/pcscd.comm), with a capped
// exponential back-off (0.25 s doubling to 5 s) as a safety net.
//
// Known limit: pcscd alive but frozen (SIGSTOP) makes SCardCancel itself wait
// for pcscd, so stop() then takes until pcscd runs again.
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
    // For `up`, what led to the connect that worked (for tests and logs):
    // "start" (the first attempt), "reconnect" (the attempt made at once
    // when a connection broke), "inotify" (the socket's path changed while
    // we waited), "back-off" (the retry timer ran out after `backoff_ms`).
    // tests/pcsc/watch.sh tells a working inotify wake-up from the safety
    // net by this, not by how fast `up` came.
    const char* woken_by = "";
    int backoff_ms = 0;
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

    // Starts the thread; a second call does nothing. Never throws: if the
    // thread cannot be created, that is reported to the sink as `down`
    // (code 0, the reason in `message`).
    void start();
    // Wakes the thread wherever it waits (SCardCancel, or the wake pipe while
    // pcscd is down) and joins it; returns within milliseconds. Harmless
    // without start() and when repeated; start() may follow. Called from the
    // sink, it only asks the thread to end (a later stop() joins it); the
    // sink must not destroy the PcscWatch.
    void stop();
    // How the thread saw the last stop(), for tests (read after stop()):
    // "cancel" (SCardCancel ended its SCardGetStatusChange), "wake" (the
    // wake pipe ended a wait for pcscd or a nap), "flag" (it was between
    // waits and saw the request at its next check), "timer" (a wait ran out
    // before the thread saw the request: stop() did not wake it, a bug, not
    // slowness), or "" (the thread did not end through stop()).
    const char* stopped_by() const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

} // namespace ukey::daemon
