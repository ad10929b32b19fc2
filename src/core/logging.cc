#include "core/logging.h"

#include <atomic>

#include "spdlog/sinks/stdout_color_sinks.h"
#include "spdlog/spdlog.h"

namespace podlb {
namespace {

spdlog::logger& Logger() {
  // A function-local static: created on first use, after main() started, never reassigned.
  static std::shared_ptr<spdlog::logger> logger = [] {
    auto l = spdlog::stderr_color_mt("podlb");
    l->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%L%$ %v");
    l->set_level(spdlog::level::info);
    return l;
  }();
  return *logger;
}

spdlog::level::level_enum ToSpd(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug: return spdlog::level::debug;
    case LogLevel::kInfo: return spdlog::level::info;
    case LogLevel::kWarn: return spdlog::level::warn;
    case LogLevel::kError: return spdlog::level::err;
  }
  return spdlog::level::info;
}

}  // namespace

void LogLine(LogLevel level, std::string_view message) { Logger().log(ToSpd(level), message); }

void SetLogLevel(LogLevel level) { Logger().set_level(ToSpd(level)); }

bool LogEnabled(LogLevel level) { return Logger().should_log(ToSpd(level)); }

bool ParseLogLevel(std::string_view text, LogLevel* out) {
  if (text == "debug") *out = LogLevel::kDebug;
  else if (text == "info") *out = LogLevel::kInfo;
  else if (text == "warn") *out = LogLevel::kWarn;
  else if (text == "error") *out = LogLevel::kError;
  else return false;
  return true;
}

bool LogOnChange::Log(const std::string& message) {
  {
    absl::MutexLock lock(&mu_);
    if (last_ == message) return false;
    last_ = message;
  }
  LogLine(level_, message);
  return true;
}

void LogOnChange::Clear(std::string_view recovery) {
  bool had;
  {
    absl::MutexLock lock(&mu_);
    had = !last_.empty();
    last_.clear();
  }
  if (had && !recovery.empty()) LogLine(LogLevel::kInfo, recovery);
}

std::optional<std::string> LogThrottle::Admit(std::string_view message, absl::Time now) {
  absl::MutexLock lock(&mu_);
  if (now < next_) {
    ++suppressed_;
    return std::nullopt;
  }
  next_ = now + interval_;
  std::string line(message);
  if (suppressed_ > 0) {
    line += fmt::format(" (and {} more like it since the last such line, not logged)",
                        suppressed_);
  }
  suppressed_ = 0;
  return line;
}

bool LogThrottle::Log(std::string_view message) {
  if (!LogEnabled(level_)) return false;
  std::optional<std::string> line = Admit(message, absl::Now());
  if (!line) return false;
  LogLine(level_, *line);
  return true;
}

}  // namespace podlb
