// External conformance suite: fail2ban's own test logs for its postfix and dovecot filters, as
// shipped by the Debian fail2ban package (tests/files/logs/{postfix,dovecot}). Every log line
// there sits under a `# failJSON: {...}` line saying whether the filter must match it and which
// address ("host") it must ban.
//
// Requirement (issue 3): at least 95% of the lines marked `"match": true` yield an event with
// the same address, for each file. Every line we deliberately treat differently is listed in
// docs/fail2ban-conformance.md; the misses and the differences are printed on every run.
#include <gtest/gtest.h>
#include <simdjson.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "common/civil_time.h"
#include "ingest/syslog_parser.h"
#include "normalize/event_json.h"
#include "normalize/normalizer.h"

namespace authwall::normalize {
namespace {

namespace fs = std::filesystem;

// fail2ban's logs carry no year; any fixed `now` does (only the address is compared).
constexpr UnixMicros kNow = (days_from_civil(2005, 12, 31) * 86400) * kMicrosPerSecond;

fs::path logs_dir() {
  if (const char* env = std::getenv("AUTHWALL_FAIL2BAN_LOGS")) return env;
  return "/usr/lib/python3/dist-packages/fail2ban/tests/files/logs";
}

struct Case {
  int line = 0;
  bool match = false;
  std::string host;
  std::string text;
};

std::vector<Case> read_cases(const fs::path& path) {
  std::vector<Case> cases;
  std::ifstream in(path, std::ios::binary);
  std::string raw;
  int lineno = 0;
  bool pending = false;
  Case current;
  simdjson::dom::parser parser;
  while (std::getline(in, raw)) {
    ++lineno;
    if (!raw.empty() && raw.back() == '\r') raw.pop_back();
    if (raw.empty()) continue;
    if (raw[0] == '#') {
      const auto pos = raw.find("failJSON:");
      if (pos == std::string::npos) continue;
      current = Case{};
      pending = false;
      simdjson::dom::element doc;
      if (parser.parse(raw.substr(pos + 9)).get(doc) != simdjson::SUCCESS) {
        ADD_FAILURE() << path << ":" << lineno << ": unreadable failJSON";
        continue;
      }
      bool match = false;
      if (doc["match"].get(match) != simdjson::SUCCESS) continue;
      current.match = match;
      std::string_view host;
      if (doc["host"].get(host) == simdjson::SUCCESS) current.host = std::string(host);
      pending = true;
      continue;
    }
    if (!pending) continue;  // fail2ban allows unannotated lines; they assert nothing
    current.line = lineno;
    current.text = raw;
    cases.push_back(current);
    pending = false;
  }
  return cases;
}

struct Result {
  int expected = 0;  // lines marked match: true
  int hits = 0;
  std::string misses;
  std::string extra;  // match: false lines that yield an event (deliberate differences)
};

Result run_file(const std::string& name) {
  Result r;
  Normalizer normalizer;
  std::string json;
  for (const auto& c : read_cases(logs_dir() / name)) {
    ingest::SyslogMessage msg;
    AuthEvent event;
    NormalizeResult result;
    const auto perr = ingest::parse_syslog(c.text, kNow, msg);
    if (perr == ingest::SyslogParseError::ok) result = normalizer.normalize(msg, event);
    std::string actual;
    if (perr != ingest::SyslogParseError::ok) {
      actual = "parse error " + std::string(ingest::to_string(perr));
    } else if (result.outcome == NormalizeOutcome::event) {
      json.clear();
      append_event_json(event, json);
      actual = json;
    } else {
      actual = result.outcome == NormalizeOutcome::unrecognized ? "unrecognized" : "no event";
    }
    const bool got_event = perr == ingest::SyslogParseError::ok &&
                           result.outcome == NormalizeOutcome::event;
    if (c.match) {
      ++r.expected;
      IpAddress want;
      const bool want_ok = IpAddress::parse(c.host, want);
      if (got_event && want_ok && event.ip == want) {
        ++r.hits;
      } else {
        r.misses += "  " + name + ":" + std::to_string(c.line) + " want " + c.host + "\n    " +
                    c.text + "\n    -> " + actual + "\n";
      }
    } else if (got_event) {
      r.extra += "  " + name + ":" + std::to_string(c.line) + " (fail2ban: no match)\n    " +
                 c.text + "\n    -> " + actual + "\n";
    }
  }
  return r;
}

void check_file(const std::string& name) {
  if (!fs::exists(logs_dir() / name)) {
    GTEST_SKIP() << "fail2ban test logs not installed (" << (logs_dir() / name)
                 << "); apt-get install fail2ban";
  }
  const Result r = run_file(name);
  ASSERT_GT(r.expected, 20) << "too few failJSON cases read from " << name;
  const double rate = 100.0 * r.hits / r.expected;
  std::printf("fail2ban %s: %d of %d failure lines yield an event with the same address (%.1f%%)\n",
              name.c_str(), r.hits, r.expected, rate);
  if (!r.misses.empty()) std::printf("misses:\n%s", r.misses.c_str());
  if (!r.extra.empty()) {
    std::printf("events on lines fail2ban does not match (see docs/fail2ban-conformance.md):\n%s",
                r.extra.c_str());
  }
  EXPECT_GE(rate, 95.0) << "misses:\n" << r.misses;
}

TEST(Fail2banConformance, Postfix) { check_file("postfix"); }
TEST(Fail2banConformance, Dovecot) { check_file("dovecot"); }

}  // namespace
}  // namespace authwall::normalize
