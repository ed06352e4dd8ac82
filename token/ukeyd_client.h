// A client of ukeyd's socket (docs/ukeyd.md, "The socket"): JSON lines over
// a Unix stream socket. The one client of the protocol: the module's
// C_WaitForSlotEvent subscribes through it (token/slot_events.*), and
// `ukey status` / `ukey watch` talk to the daemon through it.
//
// The socket is non-blocking and close-on-exec; every wait ends at a
// deadline, through the caller's wait function when it has one (the module
// wakes on C_Finalize, the CLI on SIGINT).
#pragma once

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ukey {

struct UkeydFailure {
    enum Kind {
        bad_path,    // empty, or too long for a Unix socket
        absent,      // nothing listens there (ENOENT, ECONNREFUSED, ENOTDIR)
        denied,      // EACCES, EPERM: not allowed to connect
        failed,      // another local failure (socket(), send, poll)
        timeout,     // no reply by the deadline
        gone,        // the daemon closed the connection, or a read failed
        too_long,    // a line over the limit
        not_json,    // a reply that is not a JSON object
        refused,     // a reply with "ok": false
    };
    Kind kind;
    std::string why; // in words, for a log line or a message
    int err = 0;     // errno, where one says more
    // The daemon itself broke the protocol (as opposed to not being there).
    bool misbehaved() const { return kind == timeout || kind == gone || kind == too_long || kind == not_json || kind == refused; }
};

class UkeydClient {
public:
    using Clock = std::chrono::steady_clock;
    // Waits until fd is ready for `events` (poll(2)) or the deadline: 1
    // ready, 0 timed out (or woken for the caller's own reason), -1 error.
    using Wait = std::function<int(int fd, short events, Clock::time_point deadline)>;

    // max_line: the longest line accepted from the daemon.
    explicit UkeydClient(std::size_t max_line, Wait wait = {});
    ~UkeydClient();
    UkeydClient(const UkeydClient&) = delete;
    UkeydClient& operator=(const UkeydClient&) = delete;

    std::optional<UkeydFailure> connect(const std::string& path, Clock::time_point deadline);
    bool connected() const { return fd_ >= 0; }
    int fd() const { return fd_; }
    const std::string& path() const { return path_; }
    // Closes the connection and drops what was buffered.
    void close();

    // One request: a JSON object on one line (no newline in it).
    std::optional<UkeydFailure> send(const std::string& request, Clock::time_point deadline);
    // Reads what has arrived, without waiting (a bounded amount, so that a
    // flood cannot keep the caller from its other work). nullopt while the
    // connection is open; whole lines received before its end stay readable.
    std::optional<UkeydFailure> receive();
    // The next whole line received, if any.
    std::optional<std::string> next_line();
    // A partial line already longer than max_line is buffered.
    std::optional<UkeydFailure> overlong() const;
    // The next line, waiting until the deadline.
    std::optional<std::string> read_line(Clock::time_point deadline, UkeydFailure& failure);

    // A request's reply: a JSON object with "ok": true.
    std::optional<nlohmann::json> reply(Clock::time_point deadline, UkeydFailure& failure);
    // send + reply.
    std::optional<nlohmann::json> request(const std::string& req, Clock::time_point deadline,
                                          UkeydFailure& failure);
    // {"request":"subscribe","events":[...]} (in that order); no events: all
    // of them.
    static std::string subscribe_request(const std::vector<std::string>& events);

private:
    int wait(int fd, short events, Clock::time_point deadline) const;

    std::size_t max_line_;
    Wait wait_;
    std::string path_;
    int fd_ = -1;
    std::string in_;
};

} // namespace ukey
