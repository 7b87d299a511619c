// Runs every golden log file tests/golden/*.log through parse_syslog + Normalizer.
//
// File format (see tests/golden/README.md):
//   - `#` lines are comments, blank lines are ignored;
//   - immediately before each log line stands exactly one expectation line:
//       # expect: {JSON object}   the line yields exactly one event whose contract JSON contains
//                                 these fields with these values (null: the field must be null)
//       # expect: no event        the normalizer ignores the line
//       # expect: unrecognized    the line is counted as an unrecognized failure-looking line
//   - a log line without an expectation is a failure (every line must say why it is there).
// Log lines are parsed with a fixed `now` (2026-11-28T12:00:00Z) for RFC 3164 year inference.
#include <gtest/gtest.h>
#include <simdjson.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "common/civil_time.h"
#include "ingest/syslog_parser.h"
#include "normalize/custom_patterns.h"
#include "normalize/event_json.h"
#include "normalize/normalizer.h"

namespace authwall::normalize {
namespace {

namespace fs = std::filesystem;

constexpr UnixMicros kNow = (days_from_civil(2026, 11, 28) * 86400 + 12 * 3600) * kMicrosPerSecond;

constexpr std::string_view kContractFields[] = {
    "time", "host",      "program",  "source",  "service", "kind",   "reason",
    "ip",   "port",      "user",     "mechanism", "attempts", "session"};

fs::path golden_dir() { return fs::path(AUTHWALL_SOURCE_DIR) / "tests" / "golden"; }

std::vector<std::string> golden_files() {
  std::vector<std::string> files;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(golden_dir(), ec)) {
    if (entry.is_regular_file() && entry.path().extension() == ".log") {
      files.push_back(entry.path().filename().string());
    }
  }
  std::sort(files.begin(), files.end());
  return files;
}

// The custom patterns the golden files may exercise (tests/golden/custom.log).
std::shared_ptr<const CustomPatternSet> golden_patterns() {
  std::vector<CustomPatternSpec> specs(3);
  specs[0].name = "gitea";
  specs[0].program = "gitea";
  specs[0].regex =
      R"(^Failed authentication attempt for (?P<user>\S*) from (?P<ip>[0-9A-Fa-f.:]+):(?P<port>\d+):)";
  specs[0].reason = "gitea_auth_failed";
  specs[0].service = "https";
  specs[1].name = "roundcube";
  specs[1].program = "roundcube*";
  specs[1].regex = R"(^IMAP Error: Login failed for (?P<user>.*) against \S+ from (?P<ip>[0-9A-Fa-f.:]+)\. AUTHENTICATE)";
  specs[1].reason = "webmail_login_failed";
  specs[2].name = "myapp-scan";
  specs[2].program = "myapp";
  specs[2].regex = R"re("event":"scan","client":"(?P<ip>[^"]*)","proto":"(?P<service>[a-z]+)")re";
  specs[2].kind = "protocol_abuse";
  specs[2].reason = "scan";
  std::vector<ConfigError> errors;
  auto set = CustomPatternSet::build(specs, errors);
  for (const auto& e : errors) ADD_FAILURE() << e.to_string();
  return set;
}

std::string element_json(const simdjson::dom::element& e) { return simdjson::minify(e); }

// Subset comparison of one expected field against the event's JSON.
bool field_matches(const simdjson::dom::element& expected, const simdjson::dom::element& actual) {
  using T = simdjson::dom::element_type;
  if (expected.type() == T::NULL_VALUE) return actual.type() == T::NULL_VALUE;
  if (expected.type() == T::STRING) {
    std::string_view want;
    std::string_view got;
    return expected.get_string().get(want) == simdjson::SUCCESS &&
           actual.get_string().get(got) == simdjson::SUCCESS && want == got;
  }
  if (expected.type() == T::INT64 || expected.type() == T::UINT64) {
    if (actual.type() != T::INT64 && actual.type() != T::UINT64) return false;
    return element_json(expected) == element_json(actual);
  }
  return element_json(expected) == element_json(actual);
}

struct GoldenCase {
  int expect_line = 0;
  int log_line = 0;
  std::string expectation;  // the text after "# expect:"
  std::string log;
};

std::string trim(std::string s) {
  const auto b = s.find_first_not_of(" \t\r");
  if (b == std::string::npos) return {};
  const auto e = s.find_last_not_of(" \t\r");
  return s.substr(b, e - b + 1);
}

class GoldenFileTest : public ::testing::TestWithParam<std::string> {};

TEST_P(GoldenFileTest, EveryLineYieldsWhatItsExpectationSays) {
  const std::string name = GetParam();
  const fs::path path = golden_dir() / name;
  std::ifstream in(path, std::ios::binary);
  ASSERT_TRUE(in) << "cannot open " << path;

  std::vector<GoldenCase> cases;
  bool pending = false;
  GoldenCase current;
  std::string raw;
  int lineno = 0;
  while (std::getline(in, raw)) {
    ++lineno;
    if (!raw.empty() && raw.back() == '\r') raw.pop_back();
    if (trim(raw).empty()) continue;
    if (raw[0] == '#') {
      const std::string body = trim(raw.substr(1));
      if (body.rfind("expect:", 0) == 0) {
        if (pending) {
          ADD_FAILURE() << name << ":" << current.expect_line
                        << ": expectation not followed by a log line (another expectation at line "
                        << lineno << ")";
        }
        pending = true;
        current = GoldenCase{};
        current.expect_line = lineno;
        current.expectation = trim(body.substr(7));
      }
      continue;
    }
    if (!pending) {
      ADD_FAILURE() << name << ":" << lineno
                    << ": log line without a `# expect:` line above it\n  line: " << raw;
      continue;
    }
    current.log_line = lineno;
    current.log = raw;
    cases.push_back(current);
    pending = false;
  }
  if (pending) {
    ADD_FAILURE() << name << ":" << current.expect_line << ": expectation at end of file";
  }
  EXPECT_FALSE(cases.empty()) << name << " holds no cases";

  Normalizer normalizer(golden_patterns());
  simdjson::dom::parser expected_parser;
  simdjson::dom::parser actual_parser;
  std::string actual_json;
  for (const auto& c : cases) {
    const std::string where = name + ":" + std::to_string(c.log_line);
    ingest::SyslogMessage msg;
    AuthEvent event;
    NormalizeResult result;
    const auto perr = ingest::parse_syslog(c.log, kNow, msg);
    if (perr == ingest::SyslogParseError::ok) {
      result = normalizer.normalize(msg, event);
    }
    std::string actual_desc;
    if (perr != ingest::SyslogParseError::ok) {
      actual_desc = "parse error: " + std::string(ingest::to_string(perr));
    } else if (result.outcome == NormalizeOutcome::event) {
      actual_json.clear();
      append_event_json(event, actual_json);
      actual_desc = actual_json;
    } else if (result.outcome == NormalizeOutcome::unrecognized) {
      actual_desc = "unrecognized (" + std::string(to_string(result.source)) + ")";
    } else {
      actual_desc = "no event";
    }
    const auto fail = [&](const std::string& why) {
      ADD_FAILURE() << where << ": " << why << "\n  line:     " << c.log
                    << "\n  expected: " << c.expectation << "\n  actual:   " << actual_desc;
    };

    if (c.expectation == "no event") {
      if (perr == ingest::SyslogParseError::ok && result.outcome != NormalizeOutcome::ignored) {
        fail("expected no event");
      }
      continue;
    }
    if (c.expectation == "unrecognized") {
      if (perr != ingest::SyslogParseError::ok || result.outcome != NormalizeOutcome::unrecognized) {
        fail("expected the line to be counted as unrecognized");
      }
      continue;
    }
    simdjson::dom::element expected;
    if (expected_parser.parse(c.expectation).get(expected) != simdjson::SUCCESS ||
        expected.type() != simdjson::dom::element_type::OBJECT) {
      ADD_FAILURE() << name << ":" << c.expect_line
                    << ": expectation is neither a JSON object, `no event` nor `unrecognized`: "
                    << c.expectation;
      continue;
    }
    if (perr != ingest::SyslogParseError::ok || result.outcome != NormalizeOutcome::event) {
      fail("expected an event");
      continue;
    }
    simdjson::dom::element actual;
    if (actual_parser.parse(actual_json).get(actual) != simdjson::SUCCESS) {
      fail("event JSON does not parse");
      continue;
    }
    std::string mismatches;
    simdjson::dom::object expected_fields;
    if (expected.get_object().get(expected_fields) != simdjson::SUCCESS) continue;
    for (auto [key, value] : expected_fields) {
      if (std::find(std::begin(kContractFields), std::end(kContractFields), key) ==
          std::end(kContractFields)) {
        mismatches += " unknown field '" + std::string(key) + "';";
        continue;
      }
      simdjson::dom::element got;
      if (actual[key].get(got) != simdjson::SUCCESS) {
        mismatches += " missing '" + std::string(key) + "';";
      } else if (!field_matches(value, got)) {
        mismatches += " " + std::string(key) + "=" + element_json(got) + " (want " +
                      element_json(value) + ");";
      }
    }
    if (!mismatches.empty()) fail("fields differ:" + mismatches);
  }
}

std::string test_name(const ::testing::TestParamInfo<std::string>& info) {
  std::string s = info.param;
  for (char& ch : s) {
    if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9'))) ch = '_';
  }
  return s;
}

INSTANTIATE_TEST_SUITE_P(Golden, GoldenFileTest, ::testing::ValuesIn(golden_files()), test_name);
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(GoldenFileTest);

TEST(GoldenFiles, JsonAndCustomFilesArePresent) {
  const auto files = golden_files();
  EXPECT_NE(std::find(files.begin(), files.end(), "json.log"), files.end());
  EXPECT_NE(std::find(files.begin(), files.end(), "custom.log"), files.end());
}

}  // namespace
}  // namespace authwall::normalize
