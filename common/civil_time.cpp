#include "common/civil_time.h"

#include <cstdio>

namespace authwall {

std::size_t format_rfc3339(UnixMicros t, char* buf) noexcept {
  std::int64_t secs = t / kMicrosPerSecond;
  std::int64_t micros = t % kMicrosPerSecond;
  if (micros < 0) {
    micros += kMicrosPerSecond;
    secs -= 1;
  }
  std::int64_t days = secs / 86400;
  std::int64_t sod = secs % 86400;
  if (sod < 0) {
    sod += 86400;
    days -= 1;
  }
  const CivilDate date = civil_from_days(days);
  int n;
  const long long year = static_cast<long long>(date.year);
  const int hh = static_cast<int>(sod / 3600), mm = static_cast<int>(sod / 60 % 60),
            ss = static_cast<int>(sod % 60);
  if (micros != 0) {
    n = std::snprintf(buf, kRfc3339MaxLength + 1, "%04lld-%02u-%02uT%02d:%02d:%02d.%06lldZ", year,
                      date.month, date.day, hh, mm, ss, static_cast<long long>(micros));
  } else {
    n = std::snprintf(buf, kRfc3339MaxLength + 1, "%04lld-%02u-%02uT%02d:%02d:%02dZ", year,
                      date.month, date.day, hh, mm, ss);
  }
  return n < 0 ? 0 : static_cast<std::size_t>(n) > kRfc3339MaxLength ? kRfc3339MaxLength
                                                                      : static_cast<std::size_t>(n);
}

std::string format_rfc3339(UnixMicros t) {
  char buf[kRfc3339MaxLength + 1];
  return std::string(buf, format_rfc3339(t, buf));
}

}  // namespace authwall
