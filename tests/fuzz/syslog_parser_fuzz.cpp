// libFuzzer target for parse_syslog: any bytes must parse or fail with an error enum, in
// bounds, with every view inside the input and the documented invariants holding.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include "ingest/syslog_parser.h"

namespace {

using authwall::UnixMicros;
using namespace authwall::ingest;

void check_inside(std::string_view v, std::string_view input) {
  if (v.empty()) return;
  if (v.data() < input.data() || v.data() + v.size() > input.data() + input.size()) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  // Two clocks: one ordinary, one at a year boundary, so year selection is exercised both ways.
  for (const UnixMicros now : {UnixMicros{1795780800} * 1'000'000,     // 2026-11-28T12:00:00Z
                               UnixMicros{1798761599} * 1'000'000}) {  // 2026-12-31T23:59:59Z
    SyslogMessage m;
    const SyslogParseError e = parse_syslog(input, now, m);
    if (to_string(e).empty()) std::abort();
    if (e != SyslogParseError::ok) continue;
    for (std::string_view v : {m.hostname, m.app_name, m.procid, m.msgid, m.structured_data,
                               m.message}) {
      check_inside(v, input);
    }
    if (!m.message.empty() && m.message.front() == ' ') std::abort();
    if (m.message.size() >= 3 && std::memcmp(m.message.data(), "\xEF\xBB\xBF", 3) == 0) {
      std::abort();
    }
    if (m.hostname.size() > 255) std::abort();
    if (m.format == SyslogFormat::rfc5424 &&
        (m.app_name.size() > 48 || m.procid.size() > 128 || m.msgid.size() > 32)) {
      std::abort();
    }
    if ((m.facility < 0) != (m.severity < 0) || m.facility > 23 || m.severity > 7) std::abort();
  }
  return 0;
}
