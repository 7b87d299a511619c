#include <gtest/gtest.h>

#include "common/civil_time.h"
#include "common/duration.h"

namespace authwall {
namespace {

TEST(CivilTime, FormatsRfc3339Utc) {
  const UnixMicros t = days_from_civil(2026, 11, 28) * 86400 * kMicrosPerSecond +
                       (10 * 3600 + 0 * 60 + 5) * kMicrosPerSecond;
  EXPECT_EQ(format_rfc3339(t), "2026-11-28T10:00:05Z");
  EXPECT_EQ(format_rfc3339(t + 123456), "2026-11-28T10:00:05.123456Z");
  EXPECT_EQ(format_rfc3339(0), "1970-01-01T00:00:00Z");
  EXPECT_EQ(days_from_civil(2024, 2, 29) + 1, days_from_civil(2024, 3, 1));
  const CivilDate d = civil_from_days(days_from_civil(2000, 12, 31));
  EXPECT_EQ(d.year, 2000);
  EXPECT_EQ(d.month, 12u);
  EXPECT_EQ(d.day, 31u);
}

TEST(Duration, ParsesUnits) {
  EXPECT_EQ(parse_duration_seconds("90s"), 90);
  EXPECT_EQ(parse_duration_seconds("10m"), 600);
  EXPECT_EQ(parse_duration_seconds("1h"), 3600);
  EXPECT_EQ(parse_duration_seconds("7d"), 7 * 86400);
  EXPECT_EQ(parse_duration_seconds("1h30m"), 5400);
  EXPECT_FALSE(parse_duration_seconds("600"));
  EXPECT_FALSE(parse_duration_seconds(""));
  EXPECT_FALSE(parse_duration_seconds("0s"));
  EXPECT_FALSE(parse_duration_seconds("1x"));
  EXPECT_FALSE(parse_duration_seconds("h"));
  EXPECT_FALSE(parse_duration_seconds("99999999999999d"));
  EXPECT_EQ(format_duration(5400), "1h30m");
  EXPECT_EQ(format_duration(7 * 86400), "7d");
}

}  // namespace
}  // namespace authwall
