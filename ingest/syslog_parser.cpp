#include "ingest/syslog_parser.h"

#include <cstring>

namespace authwall::ingest {

namespace {

// The parser walks the input with raw pointers: every loop advances `p` and stops at `end`,
// so the whole parse is one forward pass (linear time, no backtracking).
using Ptr = const char*;

constexpr std::int64_t kMicrosPerDay = 86400 * kMicrosPerSecond;

// RFC 5424 field limits (section 6).
constexpr std::size_t kMaxHostname = 255;
constexpr std::size_t kMaxAppName = 48;
constexpr std::size_t kMaxProcId = 128;
constexpr std::size_t kMaxMsgId = 32;
constexpr std::size_t kMaxSdName = 32;

constexpr bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }
constexpr int digit(char c) noexcept { return c - '0'; }
// PRINTUSASCII of RFC 5424: %d33-126.
constexpr bool is_print_us_ascii(char c) noexcept { return c >= 33 && c <= 126; }
constexpr bool is_trailer(char c) noexcept { return c == '\n' || c == '\r' || c == '\0'; }

// Two digits at p (caller guarantees p + 2 <= end), or -1.
int two_digits(Ptr p) noexcept {
  if (!is_digit(p[0]) || !is_digit(p[1])) return -1;
  return digit(p[0]) * 10 + digit(p[1]);
}

constexpr bool is_leap(std::int64_t y) noexcept {
  return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

constexpr unsigned days_in_month(std::int64_t y, unsigned m) noexcept {
  constexpr unsigned kDays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && is_leap(y) ? 29 : kDays[m - 1];
}

// "Jan".."Dec" -> 1..12, anything else -> 0. Exact case, as every sender writes them.
unsigned month_from_name(Ptr p) noexcept {
  const unsigned key = static_cast<unsigned char>(p[0]) << 16 |
                       static_cast<unsigned char>(p[1]) << 8 | static_cast<unsigned char>(p[2]);
  switch (key) {
    case 'J' << 16 | 'a' << 8 | 'n': return 1;
    case 'F' << 16 | 'e' << 8 | 'b': return 2;
    case 'M' << 16 | 'a' << 8 | 'r': return 3;
    case 'A' << 16 | 'p' << 8 | 'r': return 4;
    case 'M' << 16 | 'a' << 8 | 'y': return 5;
    case 'J' << 16 | 'u' << 8 | 'n': return 6;
    case 'J' << 16 | 'u' << 8 | 'l': return 7;
    case 'A' << 16 | 'u' << 8 | 'g': return 8;
    case 'S' << 16 | 'e' << 8 | 'p': return 9;
    case 'O' << 16 | 'c' << 8 | 't': return 10;
    case 'N' << 16 | 'o' << 8 | 'v': return 11;
    case 'D' << 16 | 'e' << 8 | 'c': return 12;
    default: return 0;
  }
}

// "hh:mm:ss" at p (needs 8 bytes). Second 60 (a leap second) is accepted and simply lands on
// the next minute: rejecting the message would lose an auth failure over a clock detail.
bool parse_hms(Ptr p, Ptr end, std::int64_t& seconds_of_day) noexcept {
  if (end - p < 8 || p[2] != ':' || p[5] != ':') return false;
  const int h = two_digits(p), m = two_digits(p + 3), s = two_digits(p + 6);
  if (h < 0 || h > 23 || m < 0 || m > 59 || s < 0 || s > 60) return false;
  seconds_of_day = h * 3600 + m * 60 + s;
  return true;
}

// Optional ".fraction": any number of digits, the first six kept (microseconds). RFC 5424
// allows at most six; nanosecond senders (Go, journald exports) are accepted and truncated.
bool parse_fraction(Ptr& p, Ptr end, std::int64_t& micros) noexcept {
  micros = 0;
  if (p == end || *p != '.') return true;
  ++p;
  if (p == end || !is_digit(*p)) return false;
  int n = 0;
  for (; p != end && is_digit(*p); ++p, ++n) {
    if (n < 6) micros = micros * 10 + digit(*p);
  }
  for (; n < 6; ++n) micros *= 10;
  return true;
}

// RFC 3339 / RFC 5424 TIMESTAMP: YYYY-MM-DD(T|t)hh:mm:ss[.frac][Z|z|+hh:mm|-hh:mm].
// `allow_space` additionally accepts "YYYY-MM-DD hh:mm:ss" (a common Dovecot log_timestamp);
// only file-style lines may use it, since in RFC 5424 a space ends the field. A missing offset
// means UTC. On success `p` is just past the timestamp.
bool parse_rfc3339(Ptr& p, Ptr end, bool allow_space, UnixMicros& out) noexcept {
  if (end - p < 19) return false;
  if (!is_digit(p[0]) || !is_digit(p[1]) || !is_digit(p[2]) || !is_digit(p[3]) || p[4] != '-' ||
      p[7] != '-') {
    return false;
  }
  const std::int64_t year = digit(p[0]) * 1000 + digit(p[1]) * 100 + digit(p[2]) * 10 + digit(p[3]);
  const int month = two_digits(p + 5), day = two_digits(p + 8);
  if (month < 1 || month > 12 || day < 1 ||
      static_cast<unsigned>(day) > days_in_month(year, static_cast<unsigned>(month))) {
    return false;
  }
  const char sep = p[10];
  if (sep != 'T' && sep != 't' && !(allow_space && sep == ' ')) return false;
  std::int64_t sod = 0;
  if (!parse_hms(p + 11, end, sod)) return false;
  p += 19;
  std::int64_t micros = 0;
  if (!parse_fraction(p, end, micros)) return false;
  std::int64_t offset_seconds = 0;
  if (p != end && (*p == 'Z' || *p == 'z')) {
    ++p;
  } else if (p != end && (*p == '+' || *p == '-')) {
    if (end - p < 6 || p[3] != ':') return false;
    const int oh = two_digits(p + 1), om = two_digits(p + 4);
    if (oh < 0 || oh > 23 || om < 0 || om > 59) return false;
    offset_seconds = (oh * 3600 + om * 60) * (*p == '-' ? -1 : 1);
    p += 6;
  }
  const std::int64_t days =
      days_from_civil(year, static_cast<unsigned>(month), static_cast<unsigned>(day));
  out = (days * 86400 + sod - offset_seconds) * kMicrosPerSecond + micros;
  return true;
}

std::int64_t floor_div(std::int64_t a, std::int64_t b) noexcept {
  const std::int64_t q = a / b;
  return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

// Micros of (year, month, day) plus `sod_micros`; false when that day does not exist in `year`.
bool civil_micros(std::int64_t year, unsigned month, unsigned day, std::int64_t sod_micros,
                  UnixMicros& out) noexcept {
  if (day > days_in_month(year, month)) return false;  // Feb 29 outside a leap year
  out = days_from_civil(year, month, day) * kMicrosPerDay + sod_micros;
  return true;
}

constexpr UnixMicros abs_diff(UnixMicros a, UnixMicros b) noexcept { return a > b ? a - b : b - a; }

// RFC 3164 TIMESTAMP "Mmm dd hh:mm:ss" (day space-padded, zero-padded or bare), optionally
// with a fraction. The year is the one that puts the time nearest to `now`: December lines
// read in January belong to the previous year, January lines read on Dec 31 to the next.
bool parse_bsd_timestamp(Ptr& p, Ptr end, UnixMicros now, UnixMicros& out) noexcept {
  if (end - p < 14) return false;  // "Mmm d hh:mm:ss"
  const unsigned month = month_from_name(p);
  if (month == 0 || p[3] != ' ') return false;
  Ptr q = p + 4;
  if (*q == ' ') ++q;  // space-padded day "Nov  8"
  int day = 0;
  if (q != end && is_digit(*q)) day = digit(*q++);
  else return false;
  if (q != end && is_digit(*q)) day = day * 10 + digit(*q++);
  if (q == end || *q != ' ' || day < 1 || day > 31) return false;
  ++q;
  std::int64_t sod = 0;
  if (!parse_hms(q, end, sod)) return false;
  q += 8;
  std::int64_t micros = 0;
  if (!parse_fraction(q, end, micros)) return false;
  const std::int64_t sod_micros = sod * kMicrosPerSecond + micros;

  const std::int64_t year = civil_from_days(floor_div(now, kMicrosPerDay)).year;
  UnixMicros best = 0;
  bool found = false;
  for (std::int64_t y = year - 1; y <= year + 1; ++y) {
    UnixMicros t = 0;
    if (civil_micros(y, month, static_cast<unsigned>(day), sod_micros, t) &&
        (!found || abs_diff(t, now) < abs_diff(best, now))) {
      best = t;
      found = true;
    }
  }
  if (!found) return false;
  out = best;
  p = q;
  return true;
}

// Skips the spaces and UTF-8 BOMs that precede the text of MSG: rsyslog's templates leave
// the space that followed "TAG:" in MSG, and RFC 5424 senders may start MSG with a BOM.
std::string_view message_text(Ptr p, Ptr end) noexcept {
  while (p != end) {
    if (*p == ' ') {
      ++p;
    } else if (end - p >= 3 && static_cast<unsigned char>(p[0]) == 0xEF &&
               static_cast<unsigned char>(p[1]) == 0xBB &&
               static_cast<unsigned char>(p[2]) == 0xBF) {
      p += 3;
    } else {
      break;
    }
  }
  return std::string_view(p, static_cast<std::size_t>(end - p));
}

Ptr find_char(Ptr p, Ptr end, char c) noexcept {
  const void* hit = std::memchr(p, c, static_cast<std::size_t>(end - p));
  return hit ? static_cast<Ptr>(hit) : end;
}

// ---- RFC 5424 --------------------------------------------------------------------------

// One header field: 1..max PRINTUSASCII characters followed by SP, or "-" (NILVALUE, empty
// view). On success `p` is past the SP.
bool header_field(Ptr& p, Ptr end, std::size_t max, std::string_view& field) noexcept {
  Ptr q = p;
  while (q != end && *q != ' ') {
    if (!is_print_us_ascii(*q)) return false;
    ++q;
  }
  const auto len = static_cast<std::size_t>(q - p);
  if (q == end || len == 0 || len > max) return false;
  field = (len == 1 && *p == '-') ? std::string_view() : std::string_view(p, len);
  p = q + 1;
  return true;
}

// SD-NAME (SD-ID or PARAM-NAME): 1..32 PRINTUSASCII except '=', SP, ']' and '"'.
bool sd_name(Ptr& p, Ptr end) noexcept {
  Ptr q = p;
  while (q != end && is_print_us_ascii(*q) && *q != '=' && *q != ']' && *q != '"') ++q;
  const auto len = static_cast<std::size_t>(q - p);
  if (len == 0 || len > kMaxSdName) return false;
  p = q;
  return true;
}

// STRUCTURED-DATA: "-" or one or more "[SD-ID *(SP PARAM-NAME="VALUE")]". Inside VALUE a
// backslash escapes the next character ('"', '\' and ']' must be escaped; any other escape
// is kept verbatim, as RFC 5424 6.3.3 says). An unescaped ']' inside the quotes is accepted:
// the quotes already delimit the value and some senders do not escape it.
bool structured_data(Ptr& p, Ptr end, std::string_view& sd) noexcept {
  if (p == end) return false;
  if (*p == '-') {
    sd = {};
    ++p;
    return true;
  }
  const Ptr start = p;
  if (*p != '[') return false;
  while (p != end && *p == '[') {
    ++p;
    if (!sd_name(p, end)) return false;
    while (p != end && *p == ' ') {
      ++p;
      if (!sd_name(p, end)) return false;
      if (end - p < 2 || p[0] != '=' || p[1] != '"') return false;
      p += 2;
      for (;;) {
        if (p == end) return false;
        if (*p == '\\') {
          if (++p == end) return false;
          ++p;
        } else if (*p == '"') {
          ++p;
          break;
        } else {
          ++p;
        }
      }
    }
    if (p == end || *p != ']') return false;
    ++p;
  }
  sd = std::string_view(start, static_cast<std::size_t>(p - start));
  return true;
}

SyslogParseError parse_5424(Ptr p, Ptr end, SyslogMessage& out) noexcept {
  out.format = SyslogFormat::rfc5424;
  if (p == end) return SyslogParseError::bad_timestamp;
  if (*p == '-') {
    ++p;
  } else {
    if (!parse_rfc3339(p, end, false, out.time)) return SyslogParseError::bad_timestamp;
    out.has_time = true;
  }
  if (p == end || *p != ' ') return p == end ? SyslogParseError::bad_header
                                             : SyslogParseError::bad_timestamp;
  ++p;
  if (!header_field(p, end, kMaxHostname, out.hostname) ||
      !header_field(p, end, kMaxAppName, out.app_name) ||
      !header_field(p, end, kMaxProcId, out.procid) ||
      !header_field(p, end, kMaxMsgId, out.msgid)) {
    return SyslogParseError::bad_header;
  }
  if (!structured_data(p, end, out.structured_data)) return SyslogParseError::bad_structured_data;
  if (p == end) return SyslogParseError::ok;
  if (*p != ' ') return SyslogParseError::bad_structured_data;
  out.message = message_text(p + 1, end);
  return SyslogParseError::ok;
}

// ---- RFC 3164 and the file forms ---------------------------------------------------------

// TAG at p: "name[pid]:", "name:", "name[pid]" (rsyslog's 3164 rendering of an RFC 5424
// message) or a bare "name" (rsyslog's 32-character cut, which drops "[pid]:"). Sets app_name,
// procid and message.
void tag_and_message(Ptr p, Ptr end, SyslogMessage& out) noexcept {
  Ptr q = p;
  while (q != end && *q != ' ' && *q != ':' && *q != '[') ++q;
  out.app_name = std::string_view(p, static_cast<std::size_t>(q - p));
  if (q != end && *q == '[') {
    Ptr r = q + 1;
    while (r != end && *r != ']' && *r != ' ') ++r;
    if (r != end && *r == ']') {
      out.procid = std::string_view(q + 1, static_cast<std::size_t>(r - q - 1));
      q = r + 1;
    } else {
      // Not a [pid]: the bracket belongs to the tag text.
      while (q != end && *q != ' ' && *q != ':') ++q;
      out.app_name = std::string_view(p, static_cast<std::size_t>(q - p));
    }
  }
  if (q != end && *q == ':') ++q;
  out.message = message_text(q, end);
}

// A token that ends with ':' or contains '[' is a tag ("dovecot[123]:", "imap-login:"); a
// hostname never looks like that.
bool looks_like_tag(Ptr p, Ptr token_end) noexcept {
  if (p == token_end) return false;
  if (token_end[-1] == ':') return true;
  return std::memchr(p, '[', static_cast<std::size_t>(token_end - p)) != nullptr;
}

SyslogParseError parse_3164(Ptr p, Ptr end, UnixMicros now, SyslogMessage& out) noexcept {
  out.format = SyslogFormat::rfc3164;
  // A timestamp is "present" once the text has its unmistakable start ("Nov 2", "Nov  8",
  // "2026-1"); an invalid one after that is bad_timestamp. Anything else ("May I ...") is a
  // line without a timestamp, as RFC 3164 4.3.3 reads it.
  bool timestamp_present = false;
  if (end - p >= 6 && p[3] == ' ' && (is_digit(p[4]) || (p[4] == ' ' && is_digit(p[5]))) &&
      month_from_name(p) != 0) {
    if (!parse_bsd_timestamp(p, end, now, out.time)) return SyslogParseError::bad_timestamp;
    timestamp_present = true;
  } else if (end - p >= 6 && is_digit(p[0]) && is_digit(p[1]) && is_digit(p[2]) &&
             is_digit(p[3]) && p[4] == '-' && is_digit(p[5])) {
    if (!parse_rfc3339(p, end, true, out.time)) return SyslogParseError::bad_timestamp;
    timestamp_present = true;
  }
  if (timestamp_present) {
    out.has_time = true;
    if (p == end) return SyslogParseError::bad_header;
    if (*p != ' ') return SyslogParseError::bad_timestamp;
    while (p != end && *p == ' ') ++p;
    if (p == end) return SyslogParseError::bad_header;
    const Ptr token_end = find_char(p, end, ' ');
    if (!looks_like_tag(p, token_end)) {
      const auto len = static_cast<std::size_t>(token_end - p);
      if (len > kMaxHostname) return SyslogParseError::bad_header;
      out.hostname = std::string_view(p, len);
      p = token_end;
      while (p != end && *p == ' ') ++p;
    }
    tag_and_message(p, end, out);
    return SyslogParseError::ok;
  }
  // No timestamp: RFC 3164 4.3.3 makes the whole rest the message. A leading token that is
  // unmistakably a tag ("postfix/smtpd[1]: ...") is still split off. A JSON object is never a
  // tag: a bare JSON datagram (rsyslog's JSON templates, journald exports) often has a first
  // token like `{"MESSAGE":"warning:` or `{"tags":["a"],` that only looks like one.
  const Ptr token_end = find_char(p, end, ' ');
  const bool json = p != end && *p == '{';
  if (!json && looks_like_tag(p, token_end)) {
    tag_and_message(p, end, out);
  } else {
    out.message = message_text(p, end);
  }
  return SyslogParseError::ok;
}

}  // namespace

std::string_view to_string(SyslogParseError e) noexcept {
  switch (e) {
    case SyslogParseError::ok: return "ok";
    case SyslogParseError::empty: return "empty";
    case SyslogParseError::too_long: return "too_long";
    case SyslogParseError::bad_priority: return "bad_priority";
    case SyslogParseError::bad_version: return "bad_version";
    case SyslogParseError::bad_timestamp: return "bad_timestamp";
    case SyslogParseError::bad_header: return "bad_header";
    case SyslogParseError::bad_structured_data: return "bad_structured_data";
  }
  return "unknown";
}

SyslogParseError parse_syslog(std::string_view input, UnixMicros now, SyslogMessage& out) noexcept {
  out = SyslogMessage{};
  Ptr p = input.data();
  Ptr end = p + input.size();
  while (end != p && is_trailer(end[-1])) --end;
  if (static_cast<std::size_t>(end - p) > kMaxSyslogMessageLength) return SyslogParseError::too_long;
  {
    Ptr q = p;
    while (q != end && (*q == ' ' || *q == '\t' || is_trailer(*q))) ++q;
    if (q == end) return SyslogParseError::empty;
  }

  if (*p == '<') {
    ++p;
    int pri = 0, n = 0;
    while (p != end && is_digit(*p) && n < 3) {
      pri = pri * 10 + digit(*p++);
      ++n;
    }
    if (n == 0 || p == end || *p != '>' || pri > 191) return SyslogParseError::bad_priority;
    ++p;
    out.facility = static_cast<std::int8_t>(pri >> 3);
    out.severity = static_cast<std::int8_t>(pri & 7);
    // RFC 5424 VERSION (NONZERO-DIGIT 0*2DIGIT) then SP. A digit run ending in anything else
    // (the "2026-" of an RFC 3339 timestamp) is not a version.
    Ptr q = p;
    while (q != end && is_digit(*q) && q - p < 4) ++q;
    if (q != p && q != end && *q == ' ') {
      if (q - p != 1 || *p != '1') return SyslogParseError::bad_version;
      return parse_5424(q + 1, end, out);
    }
  }
  return parse_3164(p, end, now, out);
}

}  // namespace authwall::ingest
