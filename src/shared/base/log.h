// Structured logging to stderr, one line per event in logfmt:
//   ts=2026-11-26T01:02:03.456Z level=info event=server.listening address=127.0.0.1:7443
// Values with spaces or quotes are quoted. Never log secrets or anything derived from owners'
// data: log events, identifiers and service-level figures only.
// Thread safe (one write(2) per line).
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

namespace chiron {

enum class LogLevel { kDebug, kInfo, kWarning, kError };

using LogField = std::pair<std::string_view, std::string>;

void Log(LogLevel level, std::string_view event, std::initializer_list<LogField> fields = {});

inline void LogInfo(std::string_view event, std::initializer_list<LogField> fields = {}) {
  Log(LogLevel::kInfo, event, fields);
}
inline void LogWarning(std::string_view event, std::initializer_list<LogField> fields = {}) {
  Log(LogLevel::kWarning, event, fields);
}
inline void LogError(std::string_view event, std::initializer_list<LogField> fields = {}) {
  Log(LogLevel::kError, event, fields);
}

// Lines below this level are dropped (default kInfo).
void SetMinLogLevel(LogLevel level);

}  // namespace chiron
