#pragma once
// Human-readable log lines on stderr: "authwall: warning: message". When stderr is the
// systemd journal (JOURNAL_STREAM is set), each line starts with a syslog priority prefix
// ("<4>") that journald turns into the entry's level.
//
// Thread-safe: each line is formatted into a stack buffer and written with one write(2), so
// lines from different threads never interleave. The data path never logs per message at
// the default level: it counts, and reports through RateLimitedLog at most once per interval.
#include <atomic>
#include <cstdarg>
#include <cstdint>

#include "common/civil_time.h"

namespace authwall::app {

enum class LogLevel : int { error = 3, warning = 4, info = 6, debug = 7 };

void set_log_level(LogLevel level) noexcept;
LogLevel log_level() noexcept;
bool log_enabled(LogLevel level) noexcept;

void log_message(LogLevel level, const char* format, ...) noexcept
    __attribute__((format(printf, 2, 3)));
void vlog_message(LogLevel level, const char* format, std::va_list args) noexcept;

#define AUTHWALL_LOG(level, ...)                                                \
  do {                                                                          \
    if (::authwall::app::log_enabled(level)) ::authwall::app::log_message(level, __VA_ARGS__); \
  } while (0)
#define LOG_ERROR(...) AUTHWALL_LOG(::authwall::app::LogLevel::error, __VA_ARGS__)
#define LOG_WARNING(...) AUTHWALL_LOG(::authwall::app::LogLevel::warning, __VA_ARGS__)
#define LOG_INFO(...) AUTHWALL_LOG(::authwall::app::LogLevel::info, __VA_ARGS__)
#define LOG_DEBUG(...) AUTHWALL_LOG(::authwall::app::LogLevel::debug, __VA_ARGS__)

// For conditions that can repeat per message (a dropped datagram, a rejected sender): the
// first occurrence is logged, later ones within `interval` are only counted, and the next
// line after the interval says how many were suppressed. Safe to share between threads.
class RateLimitedLog {
 public:
  explicit RateLimitedLog(UnixMicros interval = 10 * kMicrosPerSecond) noexcept
      : interval_(interval) {}
  // Logs (or counts) one occurrence at time `now`.
  void log(LogLevel level, UnixMicros now, const char* format, ...) noexcept
      __attribute__((format(printf, 4, 5)));

 private:
  UnixMicros interval_;
  std::atomic<UnixMicros> next_allowed_{0};
  std::atomic<std::uint64_t> suppressed_{0};
};

}  // namespace authwall::app
