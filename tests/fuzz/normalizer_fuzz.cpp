// libFuzzer target for the normalize stage: arbitrary bytes through parse_syslog + Normalizer
// (Postfix, Dovecot, JSON messages, one operator pattern) + the event's JSON form.
//
// Invariants checked beyond "no crash, no sanitizer report":
//   - an event's JSON is valid JSON (whatever bytes the line held);
//   - every view in the event points into the input, into the normalizer's own buffers, or
//     at static text; never at freed memory (ASan checks the reads in append_event_json);
//   - for plain-text lines an IPv4 client address appears literally in the line: addresses are
//     taken from the text, never invented.
#include <simdjson.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/ip_address.h"
#include "ingest/syslog_parser.h"
#include "normalize/custom_patterns.h"
#include "normalize/event_json.h"
#include "normalize/json_normalizer.h"
#include "normalize/normalizer.h"

namespace {

using namespace authwall;
using namespace authwall::normalize;

std::shared_ptr<const CustomPatternSet> make_patterns() {
  CustomPatternSpec spec;
  spec.name = "fuzz";
  spec.program = "app*";
  spec.regex = R"(^(?:login|auth) (?:failed|denied) for (?P<user>.*) from (?P<ip>[0-9A-Fa-f.:]+)(?: port (?P<port>\d+))?(?: via (?P<service>\w+))?$)";
  std::vector<ConfigError> errors;
  auto set = CustomPatternSet::build({spec}, errors);
  if (!set) std::abort();
  return set;
}

Normalizer& normalizer() {
  static Normalizer n(make_patterns());
  return n;
}

void check_event(const AuthEvent& e, std::string_view input, bool plain_text) {
  static std::string json;
  static simdjson::dom::parser parser;
  json.clear();
  append_event_json(e, json, 1);
  simdjson::dom::element doc;
  if (parser.parse(json).get(doc) != simdjson::SUCCESS) std::abort();
  if (e.reason.empty()) std::abort();
  // IPv4-mapped IPv6 ("::ffff:c000:201") is canonicalised to IPv4 text the line need not hold.
  bool maybe_mapped = false;
  for (std::size_t i = 0; i + 4 <= input.size() && !maybe_mapped; ++i) {
    maybe_mapped = (input[i] | 0x20) == 'f' && (input[i + 1] | 0x20) == 'f' &&
                   (input[i + 2] | 0x20) == 'f' && (input[i + 3] | 0x20) == 'f';
  }
  if (plain_text && e.ip.is_v4 && !maybe_mapped) {
    char buf[IpAddress::kMaxTextLength + 1];
    const std::string_view ip(buf, e.ip.format(buf));
    if (input.find(ip) == std::string_view::npos) std::abort();
  }
}

void run(const ingest::SyslogMessage& msg, std::string_view input) {
  AuthEvent event;
  const NormalizeResult r = normalizer().normalize(msg, event);
  if (r.outcome == NormalizeOutcome::event) {
    std::string_view json;
    check_event(event, input, !JsonNormalizer::extract(msg.message, json));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  constexpr UnixMicros kNow = UnixMicros{1795780800} * 1'000'000;  // 2026-11-28T12:00:00Z

  ingest::SyslogMessage msg;
  if (ingest::parse_syslog(input, kNow, msg) == ingest::SyslogParseError::ok) run(msg, input);

  // The same bytes as the message body of each daemon, so the templates see them even when
  // they would not survive the syslog header parser.
  static constexpr std::string_view kPrograms[] = {"postfix/smtpd", "postfix/postscreen",
                                                   "postfix/submission/smtpd", "dovecot",
                                                   "imap-login", "auth", "app", "postfix"};
  ingest::SyslogMessage direct;
  direct.hostname = "mx";
  direct.procid = "42";
  direct.app_name = kPrograms[size % (sizeof kPrograms / sizeof kPrograms[0])];
  direct.message = input;
  run(direct, input);
  return 0;
}
