// The one logging facade of podlb (spdlog underneath). Thread-safe. Call sites say what happened,
// why, and what to do; LogOnChange keeps a repeating failure to one line per state change.
#pragma once

#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "fmt/format.h"

namespace podlb {

enum class LogLevel { kDebug, kInfo, kWarn, kError };

// Writes one line to stderr. Lines below the configured level are dropped.
void LogLine(LogLevel level, std::string_view message);
void SetLogLevel(LogLevel level);
bool ParseLogLevel(std::string_view text, LogLevel* out);
// Whether lines of `level` are written: the Log* functions below format nothing otherwise, so a
// LogDebug on a per-call or per-push path costs a level check when debug is off.
bool LogEnabled(LogLevel level);

template <typename... Args>
void LogDebug(fmt::format_string<Args...> f, Args&&... args) {
  if (!LogEnabled(LogLevel::kDebug)) return;
  LogLine(LogLevel::kDebug, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void LogInfo(fmt::format_string<Args...> f, Args&&... args) {
  if (!LogEnabled(LogLevel::kInfo)) return;
  LogLine(LogLevel::kInfo, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void LogWarn(fmt::format_string<Args...> f, Args&&... args) {
  if (!LogEnabled(LogLevel::kWarn)) return;
  LogLine(LogLevel::kWarn, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void LogError(fmt::format_string<Args...> f, Args&&... args) {
  if (!LogEnabled(LogLevel::kError)) return;
  LogLine(LogLevel::kError, fmt::format(f, std::forward<Args>(args)...));
}

// Remembers the last message logged for one condition and logs again only when it changes, so
// a watch that fails every second for an hour leaves one line, and recovery leaves another.
class LogOnChange {
 public:
  explicit LogOnChange(LogLevel level) : level_(level) {}
  // Logs `message` if it differs from the previous one. Returns true if it logged.
  bool Log(const std::string& message);
  // Forgets the last message (the condition cleared); logs `recovery` if something was pending.
  void Clear(std::string_view recovery = {});

 private:
  LogLevel level_;
  absl::Mutex mu_;
  std::string last_ ABSL_GUARDED_BY(mu_);
};

// Keeps a frequent event to one line per interval: a client with the wrong CA retrying its TLS
// handshake every second, or 10,000 of them, leave a line per interval, not one per attempt.
// The first occurrence is logged at once; later ones within the interval are counted, and the
// next line logged says how many were left out.
class LogThrottle {
 public:
  LogThrottle(LogLevel level, absl::Duration interval) : level_(level), interval_(interval) {}
  // Logs `message` now, or counts it; true if it logged.
  bool Log(std::string_view message);
  // The decision alone, at `now`: the line to write, or nothing (counted).
  std::optional<std::string> Admit(std::string_view message, absl::Time now);

 private:
  const LogLevel level_;
  const absl::Duration interval_;
  absl::Mutex mu_;
  absl::Time next_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  uint64_t suppressed_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace podlb
