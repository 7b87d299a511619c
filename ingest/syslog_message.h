#pragma once
// The first pipeline stage's output: one syslog message, parsed.
//
// Every string_view points into the caller's input buffer and is valid only as long as that
// buffer is (for the daemon: during the call that hands the message on). No allocation.
#include <cstdint>
#include <string_view>

#include "common/civil_time.h"

namespace authwall::ingest {

enum class SyslogFormat : std::uint8_t {
  rfc5424,  // <PRI>1 TIMESTAMP HOST APP PROCID MSGID SD MSG
  rfc3164,  // <PRI>Mmm dd hh:mm:ss HOST TAG[PID]: MSG, and the file forms without <PRI>
};

struct SyslogMessage {
  SyslogFormat format = SyslogFormat::rfc3164;
  // -1 when the input had no <PRI> (file lines).
  std::int8_t facility = -1;
  std::int8_t severity = -1;
  // False for a NILVALUE timestamp or a line without one; `time` is then meaningless.
  bool has_time = false;
  UnixMicros time = 0;           // UTC. RFC 3164 times carry no zone and are read as UTC.
  std::string_view hostname;     // empty when absent or NILVALUE
  std::string_view app_name;     // RFC 5424 APP-NAME, or the RFC 3164 TAG without [pid]
  std::string_view procid;       // RFC 5424 PROCID or the RFC 3164 [pid]; empty when absent
  std::string_view msgid;        // RFC 5424 only; empty when absent or NILVALUE
  std::string_view structured_data;  // raw SD text including brackets; empty for NILVALUE/3164
  std::string_view message;      // MSG without the BOM and without leading spaces
};

}  // namespace authwall::ingest
