#pragma once
// Calendar arithmetic without the C library's time zone state (thread-safe, no allocation).
// Times are microseconds since the Unix epoch, UTC.
#include <cstddef>
#include <cstdint>
#include <string>

namespace authwall {

using UnixMicros = std::int64_t;
inline constexpr UnixMicros kMicrosPerSecond = 1'000'000;

// Days since 1970-01-01 of a proleptic Gregorian date (month 1..12, day 1..31).
constexpr std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) noexcept {
  y -= m <= 2;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

struct CivilDate {
  std::int64_t year;
  unsigned month;  // 1..12
  unsigned day;    // 1..31
};

constexpr CivilDate civil_from_days(std::int64_t z) noexcept {
  z += 719468;
  const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const std::int64_t y = static_cast<std::int64_t>(yoe) + era * 400;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  const unsigned d = doy - (153 * mp + 2) / 5 + 1;
  const unsigned m = mp < 10 ? mp + 3 : mp - 9;
  return CivilDate{y + (m <= 2), m, d};
}

// RFC 3339 in UTC: "2026-11-28T10:00:00Z", or with microseconds ("…:00.123456Z") when
// the time has a fractional part. Writes at most kRfc3339MaxLength bytes; returns the length.
inline constexpr std::size_t kRfc3339MaxLength = 32;
std::size_t format_rfc3339(UnixMicros t, char* buf) noexcept;
std::string format_rfc3339(UnixMicros t);

}  // namespace authwall
