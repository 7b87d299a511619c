// Rule behaviour as data: every tests/rules/cases/*.yaml holds a rule set, timed events and the
// decisions expected at each event (docs/rules.md "Test cases" describes the format). Every
// tests/rules/bad/*.yaml is a broken rule file whose `# error: LINE:COL: text` comments list
// exactly the errors loading must report.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <tuple>
#include <string>
#include <vector>

#include "common/duration.h"
#include "rules/rule_config.h"
#include "rules/rule_engine.h"
#include "state/offence_store.h"

namespace fs = std::filesystem;
using namespace authwall;
using namespace authwall::rules;

namespace {

const fs::path kSourceDir = AUTHWALL_SOURCE_DIR;
// 2026-11-28T10:00:00Z: event `t:` values are seconds after this.
constexpr UnixMicros kBase = 1795860000LL * kMicrosPerSecond;

std::vector<fs::path> files_in(const fs::path& dir) {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().extension() == ".yaml") out.push_back(e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

// An AuthEvent together with the strings its views point at.
struct OwnedEvent {
  std::string host, program, service, reason, user;
  normalize::AuthEvent event;
};

normalize::EventKind parse_kind(const std::string& s) {
  using normalize::EventKind;
  for (auto k : {EventKind::auth_failure, EventKind::auth_success, EventKind::protocol_abuse,
                 EventKind::rejected, EventKind::no_auth_disconnect}) {
    if (normalize::to_string(k) == s) return k;
  }
  throw std::runtime_error("bad kind " + s);
}

normalize::EventSource parse_source(const std::string& s) {
  using normalize::EventSource;
  for (auto k : {EventSource::postfix, EventSource::dovecot, EventSource::custom}) {
    if (normalize::to_string(k) == s) return k;
  }
  throw std::runtime_error("bad source " + s);
}

void fill_event(const YAML::Node& n, OwnedEvent& o) {
  auto& e = o.event;
  e = normalize::AuthEvent{};
  static const char* const kKnown[] = {"t",       "kind", "source",   "service", "reason",
                                       "ip",      "port", "user",     "mechanism", "attempts",
                                       "session", "host", "program",  "repeat",  "expect",
                                       "warnings", "note"};
  for (const auto& kv : n) {
    const std::string key = kv.first.Scalar();
    ASSERT_TRUE(std::find(std::begin(kKnown), std::end(kKnown), key) != std::end(kKnown))
        << "unknown event field " << key << " at line " << kv.first.Mark().line + 1;
  }
  e.kind = parse_kind(n["kind"] ? n["kind"].as<std::string>() : "auth_failure");
  e.source = parse_source(n["source"] ? n["source"].as<std::string>() : "postfix");
  o.service = n["service"] ? n["service"].as<std::string>() : "";
  o.reason = n["reason"] ? n["reason"].as<std::string>() : "";
  o.host = n["host"] ? n["host"].as<std::string>() : "";
  o.program = n["program"] ? n["program"].as<std::string>() : "";
  e.service = o.service;
  e.reason = o.reason;
  e.host = o.host;
  e.program = o.program;
  ASSERT_TRUE(n["ip"]) << "event without ip at line " << n.Mark().line + 1;
  ASSERT_TRUE(IpAddress::parse(n["ip"].as<std::string>(), e.ip)) << n["ip"].as<std::string>();
  if (n["port"]) e.port = n["port"].as<int>();
  if (n["user"]) {
    e.has_user = true;
    o.user = n["user"].as<std::string>();
    e.user = o.user;
  }
  if (n["mechanism"]) e.mechanism.assign(n["mechanism"].as<std::string>());
  if (n["session"]) e.session.assign(n["session"].as<std::string>());
  if (n["attempts"]) e.attempts = n["attempts"].as<std::uint32_t>();
}

std::vector<IpPrefix> prefixes(const YAML::Node& n) {
  std::vector<IpPrefix> out;
  if (!n) return out;
  for (const auto& p : n) {
    IpPrefix prefix;
    if (!IpPrefix::parse(p.as<std::string>(), prefix)) throw std::runtime_error("bad prefix");
    out.push_back(prefix);
  }
  return out;
}

std::string describe(const BanDecision& d) {
  return std::string(d.rule.view()) + " " + d.target.to_string() + " " +
         format_duration(d.duration_seconds) + " #" + std::to_string(d.offence);
}

// An `expect` entry in describe()'s form.
std::string describe_expected(const YAML::Node& d) {
  return d["rule"].as<std::string>() + " " + d["target"].as<std::string>() + " " +
         format_duration(*parse_duration_seconds(d["duration"].as<std::string>())) + " #" +
         (d["offence"] ? d["offence"].as<std::string>() : "1");
}

// Each case runs three times: event by event (on_event); with each `repeat` group handed over
// as one batch (on_events); and with all its events (up to a restart) as one batch, where
// on_events may evaluate them kind group by kind group and must still give the same
// decisions in the same order (checked over the whole batch, warnings too).
enum class Feed { one_by_one, repeats_batched, all_batched };

class RuleCase : public ::testing::TestWithParam<std::tuple<fs::path, Feed>> {};

TEST_P(RuleCase, DecisionsMatchExpectations) {
  const fs::path path = std::get<0>(GetParam());
  const Feed feed = std::get<1>(GetParam());
  const bool batched = feed == Feed::repeats_batched;
  const YAML::Node doc = YAML::LoadFile(path.string());

  RuleSet rules;
  std::vector<ConfigError> errors;
  YAML::Node rule_doc;
  rule_doc["rules"] = doc["rules"];
  ASSERT_TRUE(parse_rule_document(rule_doc, path.string(), rules, errors))
      << (errors.empty() ? "" : errors.front().to_string());

  RuleEngineOptions options;
  options.seed = 42;
  if (const auto o = doc["options"]) {
    if (o["max_tracked_keys"]) options.max_tracked_keys = o["max_tracked_keys"].as<std::size_t>();
    if (o["history_window"]) {
      options.history_window_seconds = *parse_duration_seconds(o["history_window"].as<std::string>());
    }
  }
  std::vector<std::string> warnings;
  options.warn = [&](std::string_view w) { warnings.emplace_back(w); };

  // `state: sqlite` keeps offence history in a database file that a `restart` event reopens.
  const bool sqlite = doc["state"] && doc["state"].as<std::string>() == "sqlite";
  const fs::path db_dir = fs::temp_directory_path() /
                          ("authwall-rules-" + path.stem().string() + "-" + std::to_string(::getpid()));
  fs::remove_all(db_dir);
  fs::create_directories(db_dir);
  std::unique_ptr<state::SqliteOffenceStore> store;
  auto open_store = [&] {
    store.reset();
    std::string error;
    store = state::SqliteOffenceStore::open((db_dir / "state.db").string(), error);
    ASSERT_TRUE(store) << error;
    options.history = store.get();
  };
  if (sqlite) open_store();

  const auto never_ban = prefixes(doc["never_ban"]);
  const auto proxies = prefixes(doc["trusted_proxies"]);
  auto engine = std::make_unique<RuleEngine>(rules, never_ban, proxies, options);

  std::vector<BanDecision> out;
  // Feed::all_batched: the events so far, what they must decide and warn, in order.
  std::vector<std::unique_ptr<OwnedEvent>> pending;
  std::vector<normalize::AuthEvent> batch;
  std::vector<UnixMicros> batch_nows;
  std::vector<std::string> batch_want, batch_want_warnings;
  const auto flush = [&] {
    out.clear();
    warnings.clear();
    batch.clear();
    for (const auto& o : pending) batch.push_back(o->event);
    engine->on_events(batch, batch_nows, out);
    std::vector<std::string> got;
    for (const auto& d : out) got.push_back(describe(d));
    EXPECT_EQ(got, batch_want) << path.filename().string() << " as one batch";
    EXPECT_EQ(warnings, batch_want_warnings) << path.filename().string() << " as one batch";
    pending.clear();
    batch_nows.clear();
    batch_want.clear();
    batch_want_warnings.clear();
  };
  for (const auto& ev : doc["events"]) {
    const int line = ev.Mark().line + 1;
    if (ev["restart"]) {
      if (feed == Feed::all_batched) flush();
      // A new process: all in-memory state gone, the database file reopened.
      engine.reset();
      if (sqlite) open_store();
      engine = std::make_unique<RuleEngine>(rules, never_ban, proxies, options);
      continue;
    }
    OwnedEvent owned;
    fill_event(ev, owned);
    if (HasFatalFailure()) return;
    const double t = ev["t"].as<double>();
    const UnixMicros now = kBase + static_cast<UnixMicros>(t * kMicrosPerSecond);
    const int repeat = ev["repeat"] ? ev["repeat"].as<int>() : 1;
    if (feed == Feed::all_batched) {
      for (int i = 0; i < repeat; ++i) {
        pending.push_back(std::make_unique<OwnedEvent>());
        fill_event(ev, *pending.back());
        batch_nows.push_back(now);
      }
      for (const auto& d : ev["expect"]) batch_want.push_back(describe_expected(d));
      for (const auto& w : ev["warnings"]) batch_want_warnings.push_back(w.as<std::string>());
      continue;
    }
    out.clear();
    warnings.clear();
    if (batched) {
      const std::vector<normalize::AuthEvent> batch(static_cast<std::size_t>(repeat), owned.event);
      const std::vector<UnixMicros> nows(batch.size(), now);
      engine->on_events(batch, nows, out);
    } else {
      for (int i = 0; i < repeat; ++i) engine->on_event(owned.event, now, out);
    }

    std::vector<std::string> got, want;
    for (const auto& d : out) {
      got.push_back(describe(d));
      EXPECT_EQ(d.time, now) << path.filename() << ":" << line;
    }
    if (const auto x = ev["expect"]) {
      for (const auto& d : x) want.push_back(describe_expected(d));
    }
    EXPECT_EQ(got, want) << path.filename().string() << ":" << line << " (t=" << t << ")";
    std::vector<std::string> want_warnings;
    if (const auto w = ev["warnings"]) {
      for (const auto& s : w) want_warnings.push_back(s.as<std::string>());
    }
    EXPECT_EQ(warnings, want_warnings) << path.filename().string() << ":" << line;
  }

  if (feed == Feed::all_batched) flush();
  if (const auto x = doc["expect_stats"]) {
    const RuleEngineStats s = engine->stats();
    for (const auto& kv : x) {
      const std::string key = kv.first.Scalar();
      const std::uint64_t want = kv.second.as<std::uint64_t>();
      std::uint64_t have = 0;
      if (key == "tracked_keys") have = s.tracked_keys;
      else if (key == "evictions") have = s.evictions;
      else if (key == "expirations") have = s.expirations;
      else if (key == "trusted_proxy_failures") have = s.trusted_proxy_failures;
      else if (key == "never_ban_events") have = s.never_ban_events;
      else if (key == "duplicate_attempts") have = s.duplicate_attempts;
      else if (key == "decisions") have = s.decisions;
      else if (key == "narrowed_decisions") have = s.narrowed_decisions;
      else FAIL() << "unknown stat " << key;
      EXPECT_EQ(have, want) << path.filename().string() << ": stat " << key;
    }
  }
  engine.reset();
  store.reset();
  fs::remove_all(db_dir);
}

INSTANTIATE_TEST_SUITE_P(Cases, RuleCase,
                         ::testing::Combine(::testing::ValuesIn(files_in(kSourceDir / "tests/rules/cases")),
                                            ::testing::Values(Feed::one_by_one, Feed::repeats_batched,
                                                              Feed::all_batched)),
                         [](const auto& info) {
                           std::string n = std::get<0>(info.param).stem().string();
                           std::replace(n.begin(), n.end(), '-', '_');
                           switch (std::get<1>(info.param)) {
                             case Feed::one_by_one: return n;
                             case Feed::repeats_batched: return n + "_batched";
                             case Feed::all_batched: return n + "_one_batch";
                           }
                           return n;
                         });

// ---- broken rule files ----

struct ExpectedError {
  int line, column;
  std::string text;
};

class BadRuleFile : public ::testing::TestWithParam<fs::path> {};

TEST_P(BadRuleFile, ReportsEveryErrorWithPosition) {
  const fs::path path = GetParam();
  std::ifstream in(path);
  std::vector<ExpectedError> expected;
  for (std::string l; std::getline(in, l);) {
    const std::string tag = "# error: ";
    if (l.rfind(tag, 0) != 0) continue;
    ExpectedError e{};
    std::istringstream ss(l.substr(tag.size()));
    char colon;
    ss >> e.line >> colon >> e.column >> colon;
    std::getline(ss, e.text);
    e.text.erase(0, e.text.find_first_not_of(' '));
    expected.push_back(e);
  }
  ASSERT_FALSE(expected.empty()) << path << " has no '# error:' lines";

  RuleSet rules;
  std::vector<ConfigError> errors;
  EXPECT_FALSE(load_rule_files({path.string()}, rules, errors));
  std::string all;
  for (const auto& e : errors) all += e.to_string() + "\n";
  EXPECT_EQ(errors.size(), expected.size()) << all;
  for (const auto& want : expected) {
    const std::string prefix =
        path.string() + ":" + std::to_string(want.line) + ":" + std::to_string(want.column) + ": ";
    bool found = false;
    for (const auto& e : errors) {
      const std::string s = e.to_string();
      found = found || (s.rfind(prefix, 0) == 0 && s.find(want.text) != std::string::npos);
    }
    EXPECT_TRUE(found) << "missing " << prefix << want.text << "\ngot:\n" << all;
  }
}

INSTANTIATE_TEST_SUITE_P(Bad, BadRuleFile, ::testing::ValuesIn(files_in(kSourceDir / "tests/rules/bad")),
                         [](const auto& info) {
                           std::string n = info.param.stem().string();
                           std::replace(n.begin(), n.end(), '-', '_');
                           return n;
                         });

TEST(RuleFiles, DuplicateNamesAcrossFilesAreReportedAtTheSecond) {
  const fs::path dir = fs::temp_directory_path() / ("authwall-dup-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::string a = (dir / "a.yaml").string(), b = (dir / "b.yaml").string();
  const char* rule =
      "rules:\n"
      "  - name: brute\n"
      "    match: { kind: auth_failure }\n"
      "    window: 10m\n"
      "    threshold: 5\n"
      "    ban: { duration: 1h }\n";
  std::ofstream(a) << rule;
  std::ofstream(b) << "# second file\n" << rule;
  RuleSet rules;
  std::vector<ConfigError> errors;
  EXPECT_FALSE(load_rule_files({a, b}, rules, errors));
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].to_string(),
            b + ":3:5: duplicate rule name 'brute' (first defined at " + a + ":2:5)");
  fs::remove_all(dir);
}

TEST(RuleFiles, MissingFileIsOneError) {
  RuleSet rules;
  std::vector<ConfigError> errors;
  EXPECT_FALSE(load_rule_files({"/nonexistent/authwall/rules.yaml"}, rules, errors));
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].to_string(), "/nonexistent/authwall/rules.yaml: cannot read rule file");
}

TEST(RuleFiles, ShippedRuleFilesLoad) {
  std::vector<std::string> paths;
  for (const auto& p : files_in(kSourceDir / "config/rules.d")) paths.push_back(p.string());
  RuleSet rules;
  std::vector<ConfigError> errors;
  EXPECT_TRUE(load_rule_files(paths, rules, errors)) << (errors.empty() ? "" : errors[0].to_string());
}

}  // namespace
