#include "app/log.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>

namespace authwall::app {
namespace {

std::atomic<int> g_level{static_cast<int>(LogLevel::info)};

const char* level_name(LogLevel level) noexcept {
  switch (level) {
    case LogLevel::error: return "error";
    case LogLevel::warning: return "warning";
    case LogLevel::info: return "info";
    case LogLevel::debug: return "debug";
  }
  return "info";
}

// journald sets JOURNAL_STREAM for services whose stderr it reads; the "<N>" prefix is then
// parsed as the entry's priority instead of appearing in the text.
bool journal_prefix() noexcept {
  static const bool enabled = std::getenv("JOURNAL_STREAM") != nullptr;
  return enabled;
}

}  // namespace

void set_log_level(LogLevel level) noexcept { g_level.store(static_cast<int>(level)); }
LogLevel log_level() noexcept { return static_cast<LogLevel>(g_level.load()); }
bool log_enabled(LogLevel level) noexcept {
  return static_cast<int>(level) <= g_level.load(std::memory_order_relaxed);
}

void vlog_message(LogLevel level, const char* format, std::va_list args) noexcept {
  char buf[2048];
  int n = 0;
  if (journal_prefix()) {
    n = std::snprintf(buf, sizeof buf, "<%d>", static_cast<int>(level));
  } else {
    n = std::snprintf(buf, sizeof buf, "authwall: %s: ", level_name(level));
  }
  if (n < 0) return;
  const int m = std::vsnprintf(buf + n, sizeof buf - static_cast<std::size_t>(n) - 1, format, args);
  if (m < 0) return;
  std::size_t len = static_cast<std::size_t>(n) + static_cast<std::size_t>(m);
  if (len > sizeof buf - 2) len = sizeof buf - 2;  // truncated: keep the newline
  // Control characters (e.g. from a peer-supplied string) must not forge extra log lines.
  for (std::size_t i = static_cast<std::size_t>(n); i < len; ++i) {
    if (static_cast<unsigned char>(buf[i]) < 0x20 && buf[i] != '\t') buf[i] = '?';
  }
  buf[len++] = '\n';
  std::size_t off = 0;
  while (off < len) {
    const ssize_t w = ::write(STDERR_FILENO, buf + off, len - off);
    if (w <= 0) return;
    off += static_cast<std::size_t>(w);
  }
}

void log_message(LogLevel level, const char* format, ...) noexcept {
  std::va_list args;
  va_start(args, format);
  vlog_message(level, format, args);
  va_end(args);
}

void RateLimitedLog::log(LogLevel level, UnixMicros now, const char* format, ...) noexcept {
  if (!log_enabled(level)) return;
  UnixMicros next = next_allowed_.load(std::memory_order_relaxed);
  if (now < next || !next_allowed_.compare_exchange_strong(next, now + interval_)) {
    suppressed_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  const std::uint64_t suppressed = suppressed_.exchange(0, std::memory_order_relaxed);
  char text[1024];
  std::va_list args;
  va_start(args, format);
  const int n = std::vsnprintf(text, sizeof text, format, args);
  va_end(args);
  if (n < 0) return;
  if (suppressed > 0) {
    log_message(level, "%s (%llu similar messages suppressed)", text,
                static_cast<unsigned long long>(suppressed));
  } else {
    log_message(level, "%s", text);
  }
}

}  // namespace authwall::app
