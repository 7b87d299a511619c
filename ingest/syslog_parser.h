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
//
// What is accepted (every form is one forward pass over the input; `out` is reset first and its
// views point into `input`):
//   - RFC 5424: "<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID SD [MSG]". NILVALUE "-" gives
//     an empty view (has_time = false for the timestamp). Field limits are RFC 5424's: HOSTNAME
//     255, APP-NAME 48, PROCID 128, MSGID 32, SD-NAME 32 (longer -> bad_header /
//     bad_structured_data); header fields must be printable US-ASCII. Fractions of any length
//     are truncated to microseconds; offsets are applied (time is UTC).
//   - RFC 3164 and the file forms, each with or without "<PRI>": "Mmm dd hh:mm:ss" (day
//     space-padded, zero-padded or bare; optional fraction), RFC 3339 ("2026-11-28T10:00:00.1+01:00",
//     rsyslog's RSYSLOG_ForwardFormat and Debian's file default), or "YYYY-MM-DD hh:mm:ss" (a
//     common Dovecot log_timestamp). Then HOSTNAME (optional) and TAG: the token after the
//     timestamp is the tag, not a hostname, when it ends with ':' or contains '[' (journald and
//     glibc syslog() send "dovecot[123]: ...", Dovecot's log_path writes "imap-login: ...").
//     TAG forms: "name[pid]:", "name:", "name[pid]" (rsyslog's 3164 rendering of an RFC 5424
//     message) and a bare "name" (rsyslog's default forward template cuts TAG to 32 characters,
//     losing "[pid]:": "postfix/submissions-proxyprotoco warning: ..." gives app_name
//     "postfix/submissions-proxyprotoco", message "warning: ..."). No timestamp at all: the whole
//     rest is the message, minus a leading token that is unmistakably a tag.
//   - Times without a zone (all RFC 3164 ones, zone-less RFC 3339) are read as UTC: the sender's
//     zone is unknown, and every rule window only compares times from the same sender.
//   - `message` never starts with spaces or a UTF-8 BOM (rsyslog leaves the space that followed
//     "TAG:" in MSG; RFC 5424 allows a BOM).
SyslogParseError parse_syslog(std::string_view input, UnixMicros now, SyslogMessage& out) noexcept;

}  // namespace authwall::ingest
