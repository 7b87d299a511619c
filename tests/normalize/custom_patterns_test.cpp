#include "normalize/custom_patterns.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <string>
#include <vector>

namespace authwall::normalize {
namespace {

using ::testing::HasSubstr;

CustomPatternSpec spec(std::string program, std::string regex) {
  CustomPatternSpec s;
  s.program = std::move(program);
  s.regex = std::move(regex);
  s.file = "authwall.yaml";
  s.line = 7;
  s.column = 12;
  return s;
}

ingest::SyslogMessage message(std::string_view app, std::string_view text) {
  ingest::SyslogMessage m;
  m.app_name = app;
  m.message = text;
  m.hostname = "web";
  m.has_time = true;
  m.time = 1'795'860'000LL * kMicrosPerSecond;
  return m;
}

std::vector<std::string> build_errors(const std::vector<CustomPatternSpec>& specs) {
  std::vector<ConfigError> errors;
  auto set = CustomPatternSet::build(specs, errors);
  std::vector<std::string> out;
  for (const auto& e : errors) out.push_back(e.to_string());
  if (!errors.empty()) {
    EXPECT_EQ(set, nullptr);
  }
  return out;
}

TEST(CustomPatterns, ValidPatternsBuild) {
  std::vector<ConfigError> errors;
  auto set = CustomPatternSet::build(
      {spec("gitea", R"(from (?P<ip>\S+) user (?P<user>\S+) port (?P<port>\d+) (?P<service>\w+))")},
      errors);
  ASSERT_NE(set, nullptr);
  EXPECT_TRUE(errors.empty());
  EXPECT_EQ(set->size(), 1u);
}

TEST(CustomPatterns, BadRegexIsReportedAtItsPosition) {
  const auto errors = build_errors({spec("gitea", R"(from (?P<ip>\S+)(unclosed)")});
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_THAT(errors[0], HasSubstr("authwall.yaml:7:12: pattern: invalid regex"));
}

TEST(CustomPatterns, BacktrackingOnlySyntaxIsRejected) {
  // RE2 has no backreferences or lookaround: they would need backtracking.
  EXPECT_EQ(build_errors({spec("x", R"((?P<ip>\S+) \1)")}).size(), 1u);
  EXPECT_EQ(build_errors({spec("x", R"((?=a)(?P<ip>\S+))")}).size(), 1u);
}

TEST(CustomPatterns, IpGroupIsRequired) {
  const auto errors = build_errors({spec("gitea", R"(from (?P<user>\S+))")});
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_THAT(errors[0], HasSubstr("no (?P<ip>...) group"));
}

TEST(CustomPatterns, UnknownGroupNamesAreErrors) {
  const auto errors = build_errors({spec("gitea", R"((?P<ip>\S+) (?P<host>\S+))")});
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_THAT(errors[0], HasSubstr("unknown group name 'host'"));
}

TEST(CustomPatterns, EveryProblemIsCollected) {
  auto a = spec("", R"((?P<ip>\S+))");
  auto b = spec("b", R"((?P<ip>\S+))");
  b.kind = "brute_force";
  b.name = "bee";
  auto c = spec("c", R"((?P<ip>\S+))");
  c.reason = "";
  const auto errors = build_errors({a, b, c, spec("d", "(")});
  ASSERT_EQ(errors.size(), 4u);
  EXPECT_THAT(errors[0], HasSubstr("program must name"));
  EXPECT_THAT(errors[1], HasSubstr("pattern 'bee': unknown kind 'brute_force'"));
  EXPECT_THAT(errors[2], HasSubstr("reason must not be empty"));
  EXPECT_THAT(errors[3], HasSubstr("invalid regex"));
}

TEST(CustomPatterns, MatchFillsTheEvent) {
  auto s = spec("gitea", R"(^Failed login for (?P<user>\S*) from (?P<ip>[0-9a-f.:]+) port (?P<port>\d+) via (?P<service>\w+)$)");
  s.kind = "auth_failure";
  s.reason = "gitea_auth_failed";
  std::vector<ConfigError> errors;
  auto set = CustomPatternSet::build({s}, errors);
  ASSERT_NE(set, nullptr);
  const std::string text = "Failed login for admin from ::ffff:192.0.2.5 port 40112 via https";
  const auto msg = message("gitea", text);
  AuthEvent e;
  const auto r = set->match(msg, e);
  ASSERT_EQ(r.outcome, NormalizeOutcome::event);
  EXPECT_EQ(r.source, EventSource::custom);
  EXPECT_EQ(e.ip.to_string(), "192.0.2.5");
  EXPECT_EQ(e.port, 40112);
  EXPECT_TRUE(e.has_user);
  EXPECT_EQ(e.user, "admin");
  EXPECT_EQ(e.service, "https");
  EXPECT_EQ(e.reason, "gitea_auth_failed");
  EXPECT_EQ(e.kind, EventKind::auth_failure);
  EXPECT_EQ(e.source, EventSource::custom);
  EXPECT_EQ(e.program, "gitea");
  EXPECT_EQ(e.host, "web");
  EXPECT_TRUE(e.has_time);
}

TEST(CustomPatterns, ProgramIsExactUnlessItEndsWithStar) {
  std::vector<ConfigError> errors;
  auto set = CustomPatternSet::build(
      {spec("gitea", R"(from (?P<ip>\S+))"), spec("roundcube*", R"(at (?P<ip>\S+))")}, errors);
  ASSERT_NE(set, nullptr);
  AuthEvent e;
  EXPECT_EQ(set->match(message("gitea", "from 192.0.2.1"), e).outcome, NormalizeOutcome::event);
  EXPECT_EQ(set->match(message("gitea2", "from 192.0.2.1"), e).outcome, NormalizeOutcome::ignored);
  EXPECT_EQ(set->match(message("gite", "from 192.0.2.1"), e).outcome, NormalizeOutcome::ignored);
  EXPECT_EQ(set->match(message("roundcube", "at 192.0.2.1"), e).outcome, NormalizeOutcome::event);
  EXPECT_EQ(set->match(message("roundcube-x", "at 192.0.2.1"), e).outcome, NormalizeOutcome::event);
  EXPECT_EQ(set->match(message("round", "at 192.0.2.1"), e).outcome, NormalizeOutcome::ignored);
}

TEST(CustomPatterns, InvalidAddressIsUnrecognizedAndBadPortIsNull) {
  std::vector<ConfigError> errors;
  auto set = CustomPatternSet::build({spec("app", R"(from (?P<ip>\S+) port (?P<port>\d+))")}, errors);
  ASSERT_NE(set, nullptr);
  AuthEvent e;
  EXPECT_EQ(set->match(message("app", "from unknown port 1"), e).outcome,
            NormalizeOutcome::unrecognized);
  EXPECT_EQ(set->match(message("app", "from 192.0.2.300 port 1"), e).outcome,
            NormalizeOutcome::unrecognized);
  ASSERT_EQ(set->match(message("app", "from 192.0.2.3 port 99999"), e).outcome,
            NormalizeOutcome::event);
  EXPECT_EQ(e.port, -1);
  EXPECT_FALSE(e.has_user);
}

TEST(CustomPatterns, FirstMatchingPatternWins) {
  auto a = spec("app", R"(denied (?P<ip>\S+))");
  a.reason = "first";
  auto b = spec("app", R"((?P<ip>\d+\.\d+\.\d+\.\d+))");
  b.reason = "second";
  std::vector<ConfigError> errors;
  auto set = CustomPatternSet::build({a, b}, errors);
  ASSERT_NE(set, nullptr);
  AuthEvent e;
  ASSERT_EQ(set->match(message("app", "denied 192.0.2.9"), e).outcome, NormalizeOutcome::event);
  EXPECT_EQ(e.reason, "first");
  ASSERT_EQ(set->match(message("app", "x 192.0.2.9"), e).outcome, NormalizeOutcome::event);
  EXPECT_EQ(e.reason, "second");
}

TEST(CustomPatterns, PathologicalInputStaysLinear) {
  // The classic catastrophic-backtracking shape; RE2 runs it in one linear pass.
  std::vector<ConfigError> errors;
  auto set = CustomPatternSet::build({spec("app", R"(^(a+)+(?P<ip>\d+\.\d+\.\d+\.\d+)$)")}, errors);
  ASSERT_NE(set, nullptr);
  const std::string text = std::string(50'000, 'a') + "!";
  AuthEvent e;
  EXPECT_EQ(set->match(message("app", text), e).outcome, NormalizeOutcome::ignored);
}

std::vector<std::string> parse_errors(const std::string& yaml, std::vector<CustomPatternSpec>& specs) {
  std::vector<ConfigError> errors;
  const YAML::Node root = YAML::Load(yaml);
  parse_custom_patterns(root["patterns"], "cfg.yaml", specs, errors);
  std::vector<std::string> out;
  for (const auto& e : errors) out.push_back(e.to_string());
  return out;
}

TEST(CustomPatternsYaml, ParsesEntriesWithPositions) {
  std::vector<CustomPatternSpec> specs;
  const auto errors = parse_errors(
      "patterns:\n"
      "  - name: gitea\n"
      "    program: gitea\n"
      "    regex: 'from (?P<ip>\\S+)'\n"
      "    kind: protocol_abuse\n"
      "    reason: gitea_scan\n"
      "    service: https\n",
      specs);
  EXPECT_TRUE(errors.empty());
  ASSERT_EQ(specs.size(), 1u);
  EXPECT_EQ(specs[0].name, "gitea");
  EXPECT_EQ(specs[0].program, "gitea");
  EXPECT_EQ(specs[0].regex, "from (?P<ip>\\S+)");
  EXPECT_EQ(specs[0].kind, "protocol_abuse");
  EXPECT_EQ(specs[0].reason, "gitea_scan");
  EXPECT_EQ(specs[0].service, "https");
  EXPECT_EQ(specs[0].file, "cfg.yaml");
  EXPECT_EQ(specs[0].line, 4);  // the regex, where compile errors belong
  EXPECT_EQ(specs[0].column, 12);
}

TEST(CustomPatternsYaml, DefaultsApply) {
  std::vector<CustomPatternSpec> specs;
  const auto errors = parse_errors("patterns:\n  - {program: a, regex: '(?P<ip>\\S+)'}\n", specs);
  EXPECT_TRUE(errors.empty());
  ASSERT_EQ(specs.size(), 1u);
  EXPECT_EQ(specs[0].kind, "auth_failure");
  EXPECT_EQ(specs[0].reason, "custom");
}

TEST(CustomPatternsYaml, UnknownKeysAndMissingFieldsAreErrors) {
  std::vector<CustomPatternSpec> specs;
  const auto errors = parse_errors(
      "patterns:\n"
      "  - program: a\n"
      "    regexp: 'x'\n"
      "  - regex: '(?P<ip>\\S+)'\n"
      "  - just a string\n"
      "  - program: [a, b]\n"
      "    regex: '(?P<ip>\\S+)'\n",
      specs);
  EXPECT_TRUE(specs.empty());
  ASSERT_EQ(errors.size(), 5u);
  EXPECT_THAT(errors[0], HasSubstr("cfg.yaml:3:5: unknown key 'regexp'"));
  EXPECT_THAT(errors[1], HasSubstr("cfg.yaml:2:5: patterns entry has no regex"));
  EXPECT_THAT(errors[2], HasSubstr("cfg.yaml:4:5: patterns entry has no program"));
  EXPECT_THAT(errors[3], HasSubstr("cfg.yaml:5:5: each entry of patterns must be a mapping"));
  EXPECT_THAT(errors[4], HasSubstr("cfg.yaml:6:14: patterns entry key 'program' must be a string"));
}

TEST(CustomPatternsYaml, NotAListIsAnError) {
  std::vector<CustomPatternSpec> specs;
  const auto errors = parse_errors("patterns: {program: a}\n", specs);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_THAT(errors[0], HasSubstr("patterns must be a list"));
}

TEST(CustomPatternsYaml, RegexErrorsPointAtTheRegex) {
  std::vector<CustomPatternSpec> specs;
  EXPECT_TRUE(parse_errors("patterns:\n  - program: a\n    regex: '(?P<ip>'\n", specs).empty());
  std::vector<ConfigError> errors;
  EXPECT_EQ(CustomPatternSet::build(specs, errors), nullptr);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_THAT(errors[0].to_string(), HasSubstr("cfg.yaml:3:12: pattern: invalid regex"));
}

}  // namespace
}  // namespace authwall::normalize
