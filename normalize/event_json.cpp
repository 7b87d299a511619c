#include "normalize/event_json.h"

#include <charconv>

#include "common/civil_time.h"
#include "common/ip_address.h"

namespace authwall::normalize {
namespace {

// Length of the valid UTF-8 sequence starting at s[i] (2..4), or 0 when it is not one.
// Follows RFC 3629 table 3-7: no overlong forms, no surrogates, nothing above U+10FFFF.
std::size_t utf8_sequence_length(std::string_view s, std::size_t i) noexcept {
  const auto byte = [&](std::size_t k) -> unsigned {
    return i + k < s.size() ? static_cast<unsigned char>(s[i + k]) : 0u;
  };
  const auto cont = [&](std::size_t k, unsigned lo = 0x80, unsigned hi = 0xBF) {
    const unsigned b = byte(k);
    return i + k < s.size() && b >= lo && b <= hi;
  };
  const unsigned b0 = byte(0);
  if (b0 >= 0xC2 && b0 <= 0xDF) return cont(1) ? 2 : 0;
  if (b0 == 0xE0) return cont(1, 0xA0, 0xBF) && cont(2) ? 3 : 0;
  if ((b0 >= 0xE1 && b0 <= 0xEC) || b0 == 0xEE || b0 == 0xEF) return cont(1) && cont(2) ? 3 : 0;
  if (b0 == 0xED) return cont(1, 0x80, 0x9F) && cont(2) ? 3 : 0;
  if (b0 == 0xF0) return cont(1, 0x90, 0xBF) && cont(2) && cont(3) ? 4 : 0;
  if (b0 >= 0xF1 && b0 <= 0xF3) return cont(1) && cont(2) && cont(3) ? 4 : 0;
  if (b0 == 0xF4) return cont(1, 0x80, 0x8F) && cont(2) && cont(3) ? 4 : 0;
  return 0;
}

void append_key(std::string_view key, std::string& out) {
  out += '"';
  out += key;
  out += "\":";
}

void append_string_or_null(std::string_view text, bool present, std::string& out) {
  if (present) {
    append_json_string(text, out);
  } else {
    out += "null";
  }
}

void append_int(std::int64_t v, std::string& out) {
  char buf[24];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, static_cast<std::size_t>(r.ptr - buf));
}

}  // namespace

void append_json_string(std::string_view text, std::string& out) {
  static constexpr char kHex[] = "0123456789abcdef";
  out += '"';
  std::size_t i = 0;
  while (i < text.size()) {
    // Copy the longest run that needs no escaping in one append.
    std::size_t run = i;
    while (run < text.size()) {
      const auto c = static_cast<unsigned char>(text[run]);
      if (c < 0x20 || c == '"' || c == '\\' || c >= 0x7F) break;
      ++run;
    }
    if (run > i) {
      out.append(text.data() + i, run - i);
      i = run;
      continue;
    }
    const auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x80) {
      const std::size_t n = utf8_sequence_length(text, i);
      if (n == 0) {
        out += "\xEF\xBF\xBD";  // U+FFFD REPLACEMENT CHARACTER for each invalid byte
        ++i;
      } else {
        out.append(text.data() + i, n);
        i += n;
      }
      continue;
    }
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default: {  // other control characters and DEL
        const char esc[6] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 0xF]};
        out.append(esc, sizeof esc);
      }
    }
    ++i;
  }
  out += '"';
}

void append_event_json(const AuthEvent& e, std::string& out, std::int64_t line) {
  out += '{';
  append_key("time", out);
  if (e.has_time) {
    char buf[kRfc3339MaxLength];
    const std::size_t n = format_rfc3339(e.time, buf);
    out += '"';
    out.append(buf, n);
    out += '"';
  } else {
    out += "null";
  }
  out += ',';
  append_key("host", out);
  append_string_or_null(e.host, !e.host.empty(), out);
  out += ',';
  append_key("program", out);
  append_json_string(e.program, out);
  out += ',';
  append_key("source", out);
  append_json_string(to_string(e.source), out);
  out += ',';
  append_key("service", out);
  append_string_or_null(e.service, !e.service.empty(), out);
  out += ',';
  append_key("kind", out);
  append_json_string(to_string(e.kind), out);
  out += ',';
  append_key("reason", out);
  append_json_string(e.reason, out);
  out += ',';
  append_key("ip", out);
  {
    char buf[IpAddress::kMaxTextLength + 1];
    const std::size_t n = e.ip.format(buf);
    out += '"';
    out.append(buf, n);
    out += '"';
  }
  out += ',';
  append_key("port", out);
  if (e.port >= 0) {
    append_int(e.port, out);
  } else {
    out += "null";
  }
  out += ',';
  append_key("user", out);
  append_string_or_null(e.user, e.has_user, out);
  out += ',';
  append_key("mechanism", out);
  append_string_or_null(e.mechanism.view(), !e.mechanism.empty(), out);
  out += ',';
  append_key("attempts", out);
  append_int(e.attempts, out);
  out += ',';
  append_key("session", out);
  append_string_or_null(e.session.view(), !e.session.empty(), out);
  if (line >= 0) {
    out += ',';
    append_key("line", out);
    append_int(line, out);
  }
  out += '}';
}

}  // namespace authwall::normalize
