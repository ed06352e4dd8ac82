#include "token/ukeyd_client.h"

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

namespace ukey {

namespace {

UkeydFailure failure(UkeydFailure::Kind kind, std::string why, int err = 0)
{
    return UkeydFailure{kind, std::move(why), err};
}

std::string limit_text(std::size_t bytes)
{
    return bytes >= 1024 * 1024 ? std::to_string(bytes / (1024 * 1024)) + " MiB"
                                : std::to_string(bytes / 1024) + " KiB";
}

} // namespace

UkeydClient::UkeydClient(std::size_t max_line, Wait wait) : max_line_(max_line), wait_(std::move(wait)) {}

UkeydClient::~UkeydClient()
{
    close();
}

void UkeydClient::close()
{
    if (fd_ >= 0)
        ::close(fd_);
    fd_ = -1;
    in_.clear();
}

int UkeydClient::wait(int fd, short events, Clock::time_point deadline) const
{
    if (wait_)
        return wait_(fd, events, deadline);
    for (;;) {
        const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now()).count();
        if (left <= 0)
            return 0;
        pollfd p{fd, events, 0};
        const int r = ::poll(&p, 1, static_cast<int>(std::min<long long>(left, INT_MAX)));
        if (r < 0 && errno != EINTR)
            return -1;
        if (r > 0)
            return 1;
    }
}

std::optional<UkeydFailure> UkeydClient::connect(const std::string& path, Clock::time_point deadline)
{
    close();
    path_ = path;
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path.empty() || path.size() >= sizeof addr.sun_path)
        return failure(UkeydFailure::bad_path, "the socket path '" + path + "' is empty or too long");
    std::memcpy(addr.sun_path, path.data(), path.size());
    // Close-on-exec like every descriptor of ours: the module must not leak
    // descriptors into the programs its application runs.
    fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd_ < 0)
        return failure(UkeydFailure::failed, std::string("cannot make a socket: ") + std::strerror(errno), errno);
    // A Unix socket connects at once, or not yet (EAGAIN: its backlog is
    // full, as a blocking connect would wait, until the deadline);
    // EINPROGRESS is handled for completeness.
    int rc;
    while ((rc = ::connect(fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof addr)) != 0 &&
           (errno == EINTR || errno == EAGAIN) && Clock::now() < deadline) {
        if (errno != EAGAIN)
            continue;
        const auto until = std::min(deadline, Clock::now() + std::chrono::milliseconds(10));
        if (wait(-1, 0, until) == 0 && Clock::now() < until) {
            errno = EAGAIN; // woken for the caller's own reason: give up
            break;
        }
    }
    if (rc != 0) {
        const int e = errno;
        if (e != EINPROGRESS) {
            close();
            const auto kind = e == ENOENT || e == ECONNREFUSED || e == ENOTDIR ? UkeydFailure::absent
                              : e == EACCES || e == EPERM                     ? UkeydFailure::denied
                                                                              : UkeydFailure::failed;
            return failure(kind, std::strerror(e), e);
        }
        int err = 0;
        socklen_t len = sizeof err;
        if (wait(fd_, POLLOUT, deadline) != 1 || ::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len) != 0 ||
            err != 0) {
            close();
            return failure(UkeydFailure::failed, "connect did not complete", err);
        }
    }
    return std::nullopt;
}

std::optional<UkeydFailure> UkeydClient::send(const std::string& request, Clock::time_point deadline)
{
    const std::string line = request + "\n";
    std::size_t sent = 0;
    while (sent < line.size()) {
        const ssize_t n = ::send(fd_, line.data() + sent, line.size() - sent, MSG_NOSIGNAL);
        if (n > 0)
            sent += static_cast<std::size_t>(n);
        else if (n < 0 && errno == EINTR)
            continue;
        else if (n < 0 && errno == EAGAIN && wait(fd_, POLLOUT, deadline) == 1)
            continue;
        else
            return failure(UkeydFailure::failed,
                           std::string("sending to it failed: ") + (n < 0 ? std::strerror(errno) : "nothing sent"),
                           n < 0 ? errno : 0);
    }
    return std::nullopt;
}

std::optional<UkeydFailure> UkeydClient::receive()
{
    char buf[16384];
    for (int i = 0; i < 64; ++i) {
        const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
        if (n > 0) {
            in_.append(buf, static_cast<std::size_t>(n));
            if (auto e = overlong())
                return e;
            continue;
        }
        if (n == 0)
            return failure(UkeydFailure::gone, "it closed the connection");
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return std::nullopt;
        return failure(UkeydFailure::gone, std::string("reading from it failed: ") + std::strerror(errno), errno);
    }
    return std::nullopt;
}

std::optional<std::string> UkeydClient::next_line()
{
    const auto nl = in_.find('\n');
    if (nl == std::string::npos)
        return std::nullopt;
    std::string line = in_.substr(0, nl);
    in_.erase(0, nl + 1);
    return line;
}

std::optional<UkeydFailure> UkeydClient::overlong() const
{
    const auto nl = in_.rfind('\n');
    const std::size_t partial = nl == std::string::npos ? in_.size() : in_.size() - nl - 1;
    if (partial > max_line_)
        return failure(UkeydFailure::too_long, "it sent a line longer than " + limit_text(max_line_));
    return std::nullopt;
}

std::optional<std::string> UkeydClient::read_line(Clock::time_point deadline, UkeydFailure& f)
{
    for (;;) {
        if (auto line = next_line())
            return line;
        if (auto e = overlong()) {
            f = *e;
            return std::nullopt;
        }
        const int r = wait(fd_, POLLIN, deadline);
        if (r == 0) {
            f = failure(UkeydFailure::timeout, "no answer in time");
            return std::nullopt;
        }
        if (r < 0) {
            f = failure(UkeydFailure::failed, std::string("poll: ") + std::strerror(errno), errno);
            return std::nullopt;
        }
        if (auto e = receive()) {
            if (auto line = next_line()) // what came before the end
                return line;
            f = *e;
            return std::nullopt;
        }
    }
}

std::optional<nlohmann::json> UkeydClient::reply(Clock::time_point deadline, UkeydFailure& f)
{
    auto line = read_line(deadline, f);
    if (!line)
        return std::nullopt;
    nlohmann::json j = nlohmann::json::parse(*line, nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
        f = failure(UkeydFailure::not_json, "it answered something that is not a JSON object");
        return std::nullopt;
    }
    const auto ok = j.find("ok");
    if (ok == j.end() || !ok->is_boolean() || !ok->get<bool>()) {
        const auto text = [&](const char* key, const char* dflt) {
            const auto it = j.find(key);
            return it != j.end() && it->is_string() ? it->get<std::string>() : std::string(dflt);
        };
        const std::string msg = text("message", "");
        f = failure(UkeydFailure::refused, text("error", "error") + (msg.empty() ? "" : ": " + msg));
        return std::nullopt;
    }
    return j;
}

std::optional<nlohmann::json> UkeydClient::request(const std::string& req, Clock::time_point deadline,
                                                   UkeydFailure& f)
{
    if (auto e = send(req, deadline)) {
        f = *e;
        return std::nullopt;
    }
    return reply(deadline, f);
}

std::string UkeydClient::subscribe_request(const std::vector<std::string>& events)
{
    nlohmann::ordered_json req = {{"request", "subscribe"}};
    if (!events.empty())
        req["events"] = events;
    // ensure_ascii: an event name given on `ukey watch --events` is checked
    // against the list first, but the line stays ASCII whatever it holds.
    return req.dump(-1, ' ', true, nlohmann::json::error_handler_t::replace);
}

} // namespace ukey
