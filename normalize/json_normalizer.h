#pragma once
// JSON messages (PRODUCT.md "Input forms"): a syslog MSG that is a JSON object, with or without
// the `@cee:` cookie. Two shapes are understood (the field mapping is in docs/events.md "JSON
// messages"):
//   - Dovecot's event exporter (`format = json`): {"event": "...", "hostname": ..., "start_time":
//     ..., "end_time": ..., "fields": {"user", "remote_ip", "remote_port", ...}}. The auth events
//     (`auth_request_finished`, `auth_client_request_finished`, `login_aborted`) become
//     AuthEvents directly.
//   - A log line wrapped in JSON (rsyslog JSON templates, CEE/lumberjack, journald exports):
//     {"msg"/"message": "...", "programname"/"app-name"/"syslogtag"/...: "...", "hostname": ...,
//     "timestamp": ...}. The inner line is handed back as a SyslogMessage so the Postfix and
//     Dovecot normalizers read it exactly as if it had arrived as plain syslog.
//
// Parsed with simdjson's On-Demand API. Ownership: one JsonNormalizer per thread (it is not
// thread-safe); it owns a padded copy buffer and the parser, both sized once at construction for
// the largest syslog message, so steady-state parsing never allocates. Every string_view it
// produces (in `out` or `embedded`) points into those buffers or at static strings, and is valid
// until the next call to normalize() on the same object.
#include <cstdint>
#include <memory>
#include <string_view>

#include "ingest/syslog_message.h"
#include "normalize/auth_event.h"

namespace authwall::normalize {

enum class JsonOutcome : std::uint8_t {
  event,         // `out` holds an event (Dovecot event exporter)
  embedded,      // `embedded` holds the wrapped log line; normalize it like any other message
  ignored,       // not JSON we act on (other events, success of lookups, outages, bad JSON)
  unrecognized,  // a Dovecot auth event that says "failed" but carries no usable client address
};

class JsonNormalizer {
 public:
  JsonNormalizer();
  ~JsonNormalizer();
  JsonNormalizer(const JsonNormalizer&) = delete;
  JsonNormalizer& operator=(const JsonNormalizer&) = delete;

  // If `message` is a JSON message, sets `json` to the object text and returns true: a body that
  // starts with '{', the `@cee:` cookie, or Dovecot's log exporter prefixes ("stats: {...}",
  // "stats: Info: {...}", "Info: {...}"). Cheap: looks at the first bytes only.
  static bool extract(std::string_view message, std::string_view& json) noexcept;

  JsonOutcome normalize(const ingest::SyslogMessage& outer, std::string_view json, AuthEvent& out,
                        ingest::SyslogMessage& embedded) noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// RFC 3339 / ISO 8601 timestamp ("2026-11-28T10:00:00Z", "...T10:00:00.123456+01:00", a space
// instead of 'T' is accepted) to UTC microseconds. False for anything else.
bool parse_rfc3339(std::string_view text, UnixMicros& out) noexcept;

}  // namespace authwall::normalize
