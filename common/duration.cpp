#include "common/duration.h"

namespace authwall {

std::optional<std::int64_t> parse_duration_seconds(std::string_view text) noexcept {
  if (text.empty()) return std::nullopt;
  std::int64_t total = 0;
  std::size_t i = 0;
  while (i < text.size()) {
    std::int64_t value = 0;
    std::size_t digits = 0;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
      value = value * 10 + (text[i] - '0');
      if (value > 1'000'000'000) return std::nullopt;
      ++i;
      ++digits;
    }
    if (digits == 0 || i == text.size()) return std::nullopt;
    std::int64_t unit;
    switch (text[i]) {
      case 's': unit = 1; break;
      case 'm': unit = 60; break;
      case 'h': unit = 3600; break;
      case 'd': unit = 86400; break;
      case 'w': unit = 7 * 86400; break;
      default: return std::nullopt;
    }
    ++i;
    total += value * unit;
    if (total > 100LL * 365 * 86400) return std::nullopt;
  }
  if (total <= 0) return std::nullopt;
  return total;
}

std::string format_duration(std::int64_t seconds) {
  if (seconds <= 0) return "0s";
  static constexpr std::pair<std::int64_t, char> kUnits[] = {
      {86400, 'd'}, {3600, 'h'}, {60, 'm'}, {1, 's'}};
  std::string out;
  for (auto [unit, suffix] : kUnits) {
    if (seconds >= unit) {
      out += std::to_string(seconds / unit);
      out += suffix;
      seconds %= unit;
    }
  }
  return out;
}

}  // namespace authwall
