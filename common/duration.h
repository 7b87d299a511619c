#pragma once
// Durations as written in configuration: "90s", "10m", "1h", "7d", "2w", or combined ("1h30m").
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace authwall {

// Seconds, or nullopt for text that is not a positive duration (a bare number is rejected:
// "600" is ambiguous to a fail2ban user, who may mean seconds or minutes).
std::optional<std::int64_t> parse_duration_seconds(std::string_view text) noexcept;
// "1h30m", "7d", "90s".
std::string format_duration(std::int64_t seconds);

}  // namespace authwall
