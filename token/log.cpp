#include "token/log.h"

#include "token/escape.h"

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <syslog.h>
#include <unistd.h>

namespace ukey::log {
namespace {

std::atomic<int> g_level{static_cast<int>(Level::warning)};
std::atomic<bool> g_stderr{true};
std::atomic<bool> g_syslog{true};

const char* label(Level l)
{
    switch (l) {
    case Level::error: return "error";
    case Level::warning: return "warning";
    case Level::info: return "info";
    case Level::debug: return "debug";
    }
    return "?";
}

int syslog_priority(Level l)
{
    switch (l) {
    case Level::error: return LOG_ERR;
    case Level::warning: return LOG_WARNING;
    case Level::info: return LOG_INFO;
    case Level::debug: return LOG_DEBUG;
    }
    return LOG_INFO;
}

} // namespace

bool parse_level(std::string_view name, Level& out)
{
    for (Level l : {Level::error, Level::warning, Level::info, Level::debug}) {
        if (name == label(l)) {
            out = l;
            return true;
        }
    }
    return false;
}

void configure(const Settings& s)
{
    Level level = s.level;
    // Not in a setuid/setgid program (secure_getenv): its caller does not
    // choose what it logs.
    if (const char* env = secure_getenv("UKEY_LOG_LEVEL"))
        parse_level(env, level);
    g_level = static_cast<int>(level);
    g_stderr = s.to_stderr;
    g_syslog = s.to_syslog;
}

bool enabled(Level l)
{
    return static_cast<int>(l) <= g_level.load(std::memory_order_relaxed);
}

void write(Level l, std::string_view message)
{
    if (!enabled(l))
        return;
    // Messages carry labels, serials, certificate names, paths: text from
    // Keys and files. Escaped here, once for every caller, so that none can
    // move a terminal's cursor, write its clipboard or forge a log line.
    const std::string safe = escape::printable(message);
    if (g_stderr) {
        // One write(2) per line so lines from several threads never interleave.
        std::string line = "ukey: ";
        line += label(l);
        line += ": ";
        line += safe;
        line += '\n';
        ssize_t ignored = ::write(STDERR_FILENO, line.data(), line.size());
        (void)ignored;
    }
    if (g_syslog) {
        syslog(LOG_USER | syslog_priority(l), "ukey: %.*s", static_cast<int>(safe.size()), safe.data());
    }
}

} // namespace ukey::log
