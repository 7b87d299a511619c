// Offence history in SQLite (state/offence_store.h): counts per target and rule since a time,
// survives reopening, shares its database file with other connections, prunes old records.
// Also RuleEngine::sweep, which frees idle keys.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <filesystem>
#include <string>

#include "rules/rule_config.h"
#include "rules/rule_engine.h"
#include "state/offence_store.h"
#include "tests/temp_dir.h"

using namespace authwall;
using authwall::testing::TempDir;

namespace {

constexpr UnixMicros kT = 1795860000LL * kMicrosPerSecond;

TEST(SqliteOffenceStore, CountsPerTargetAndRuleAndSurvivesReopen) {
  TempDir dir;
  const std::string db = dir.file("state.db");
  {
    std::string error;
    auto store = state::SqliteOffenceStore::open(db, error);
    ASSERT_TRUE(store) << error;
    EXPECT_TRUE(store->record("192.0.2.7", "brute", kT));
    EXPECT_TRUE(store->record("192.0.2.7", "brute", kT + 100));
    EXPECT_TRUE(store->record("192.0.2.7", "spray", kT + 100));
    EXPECT_TRUE(store->record("2001:db8::/64", "brute", kT));
    EXPECT_EQ(store->count_since("192.0.2.7", "brute", kT), 2u);
    EXPECT_EQ(store->count_since("192.0.2.7", "brute", kT + 1), 1u);
    EXPECT_EQ(store->count_since("192.0.2.7", "spray", 0), 1u);
    EXPECT_EQ(store->count_since("192.0.2.8", "brute", 0), 0u);
  }
  std::string error;
  auto store = state::SqliteOffenceStore::open(db, error);
  ASSERT_TRUE(store) << error;
  EXPECT_EQ(store->count_since("192.0.2.7", "brute", 0), 2u);
  EXPECT_EQ(store->count_since("2001:db8::/64", "brute", 0), 1u);
  EXPECT_EQ(store->prune(kT + 50), 2);
  EXPECT_EQ(store->count_since("192.0.2.7", "brute", 0), 1u);
  EXPECT_EQ(store->count_since("2001:db8::/64", "brute", 0), 0u);
}

TEST(SqliteOffenceStore, SharesTheFileWithAnotherConnection) {
  TempDir dir;
  const std::string db = dir.file("state.db");
  // Another component's table in the same file, through its own connection, opened first.
  sqlite3* other = nullptr;
  ASSERT_EQ(sqlite3_open(db.c_str(), &other), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(other, "CREATE TABLE bans(target TEXT); INSERT INTO bans VALUES('x');",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  std::string error;
  auto store = state::SqliteOffenceStore::open(db, error);
  ASSERT_TRUE(store) << error;
  EXPECT_TRUE(store->record("192.0.2.9", "brute", kT));
  ASSERT_EQ(sqlite3_exec(other, "INSERT INTO bans VALUES('y');", nullptr, nullptr, nullptr), SQLITE_OK);
  EXPECT_EQ(store->count_since("192.0.2.9", "brute", 0), 1u);
  sqlite3_stmt* stmt = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(other, "SELECT count(*) FROM bans", -1, &stmt, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(stmt), SQLITE_ROW);
  EXPECT_EQ(sqlite3_column_int(stmt, 0), 2);
  sqlite3_finalize(stmt);
  sqlite3_close(other);
}

TEST(SqliteOffenceStore, UnopenablePathIsOneClearError) {
  std::string error;
  auto store = state::SqliteOffenceStore::open("/nonexistent-dir/authwall/state.db", error);
  EXPECT_FALSE(store);
  EXPECT_NE(error.find("/nonexistent-dir/authwall/state.db"), std::string::npos) << error;
}

TEST(RuleEngine, SweepFreesIdleKeysOnly) {
  rules::RuleSet set;
  std::vector<ConfigError> errors;
  ASSERT_TRUE(rules::parse_rule_text(
      "rules:\n"
      "  - { name: brute, match: { kind: auth_failure }, window: 10m, threshold: 2, ban: { duration: 1h } }\n",
      "inline", set, errors));
  rules::RuleEngineOptions options;
  options.seed = 3;
  rules::RuleEngine engine(set, {}, {}, options);
  std::vector<rules::BanDecision> out;
  normalize::AuthEvent e;
  e.source = normalize::EventSource::custom;
  for (std::uint8_t i = 1; i <= 10; ++i) {
    e.ip.bytes = {192, 0, 2, i};
    engine.on_event(e, kT, out);
  }
  e.ip.bytes = {192, 0, 2, 1};
  engine.on_event(e, kT + 1 * kMicrosPerSecond, out);  // .1 banned until kT + 1 h
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(engine.stats().tracked_keys, 10u);
  engine.sweep(kT + 599 * kMicrosPerSecond, 100);  // windows not over yet
  EXPECT_EQ(engine.stats().tracked_keys, 10u);
  engine.sweep(kT + 600 * kMicrosPerSecond, 100);  // 9 idle; .1 is still banned
  EXPECT_EQ(engine.stats().tracked_keys, 1u);
  EXPECT_EQ(engine.stats().expirations, 9u);
  engine.sweep(kT + 3601 * kMicrosPerSecond, 100);
  EXPECT_EQ(engine.stats().tracked_keys, 0u);
  EXPECT_EQ(engine.stats().evictions, 0u);
}

}  // namespace
