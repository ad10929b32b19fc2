// The one logging facade of podlb (spdlog underneath). Thread-safe. Call sites say what happened,
// why, and what to do; LogOnChange keeps a repeating failure to one line per state change.
#pragma once

#include <mutex>
#include <string>
#include <string_view>

#include "absl/synchronization/mutex.h"
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

}  // namespace podlb
