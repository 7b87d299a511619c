#pragma once
// bytes -> SyslogMessage. Linear time, no allocation, never throws: input is untrusted.
#include <cstdint>
#include <string_view>

#include "ingest/syslog_message.h"

namespace authwall::ingest {

enum class SyslogParseError : std::uint8_t {
  ok = 0,
  empty,              // nothing but whitespace/NULs
  too_long,           // longer than kMaxSyslogMessageLength
  bad_priority,       // "<" not followed by 1-3 digits and ">", or PRI > 191
  bad_version,        // RFC 5424 VERSION other than 1
  bad_timestamp,      // a timestamp that is present but invalid
  bad_header,         // a header field missing or too long
  bad_structured_data,
};

// Stable short names for metrics labels and logs ("bad_priority", ...).
std::string_view to_string(SyslogParseError e) noexcept;

inline constexpr std::size_t kMaxSyslogMessageLength = 64 * 1024;

// Parses one message (no framing: a datagram, a deframed TCP frame or a file line without its
// newline; trailing CR/LF/NUL are ignored). `now` picks the year of RFC 3164 timestamps: the
// year that puts the timestamp nearest to `now`.
SyslogParseError parse_syslog(std::string_view input, UnixMicros now, SyslogMessage& out) noexcept;

}  // namespace authwall::ingest
