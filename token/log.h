// Logging for a library that lives inside other people's processes: quiet by
// default, to stderr and syslog, never on a hot path, never with a PIN.
#pragma once

#include <string>
#include <string_view>

namespace ukey::log {

enum class Level { error = 0, warning = 1, info = 2, debug = 3 };

struct Settings {
    Level level = Level::warning;
    bool to_stderr = true;
    bool to_syslog = true;
};

// Replaces the settings; UKEY_LOG_LEVEL in the environment overrides the
// level, except in a setuid or setgid program.
void configure(const Settings& s);
bool enabled(Level l);
void write(Level l, std::string_view message);

inline void error(std::string_view m) { write(Level::error, m); }
inline void warning(std::string_view m) { write(Level::warning, m); }
inline void info(std::string_view m) { write(Level::info, m); }
inline void debug(std::string_view m) { if (enabled(Level::debug)) write(Level::debug, m); }

bool parse_level(std::string_view name, Level& out);

} // namespace ukey::log
