// BanStore (state/ban_store.h): bans and unbans in SQLite, read back across connections.
#include "state/ban_store.h"
#include "tests/temp_dir.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <string>


namespace authwall::state {
namespace {

constexpr UnixMicros kS = kMicrosPerSecond;
constexpr UnixMicros kT0 = 1'790'000'000LL * kS;

IpPrefix P(const char* text) {
  IpPrefix p;
  EXPECT_TRUE(IpPrefix::parse(text, p)) << text;
  return p;
}

class BanStoreTest : public ::testing::Test {
 protected:

  std::unique_ptr<BanStore> open() {
    std::string error;
    auto s = BanStore::open(path_, error);
    EXPECT_NE(s, nullptr) << error;
    return s;
  }

  authwall::testing::TempDir tmp_{"authwall-banstore"};
  std::string dir_ = tmp_.path().string();
  std::string path_ = tmp_.file("state.db");
};

TEST_F(BanStoreTest, ActiveBansSurviveReopeningAndExpireByTime) {
  {
    auto s = open();
    const std::vector<BanRecord> bans{
        {P("192.0.2.7"), "mail-auth-bruteforce", BanSource::kAuto, kT0, kT0 + 3600 * kS},
        {P("2001:db8:1::/64"), "password-spray", BanSource::kAuto, kT0, kT0 + 60 * kS},
        {P("198.51.100.9"), "manual", BanSource::kManual, kT0, kT0 + 86400 * kS},
    };
    ASSERT_TRUE(s->record_bans(bans));
  }
  auto s = open();  // a restart: a new connection reads what the old one wrote
  std::vector<BanRecord> active;
  ASSERT_TRUE(s->active_bans(kT0 + 30 * kS, active));
  ASSERT_EQ(active.size(), 3u);
  ASSERT_TRUE(s->active_bans(kT0 + 60 * kS, active));  // expires == now: over
  ASSERT_EQ(active.size(), 2u);
  EXPECT_EQ(active[0].target.to_string(), "192.0.2.7");
  EXPECT_EQ(active[0].rule, "mail-auth-bruteforce");
  EXPECT_EQ(active[0].source, BanSource::kAuto);
  EXPECT_EQ(active[0].created, kT0);
  EXPECT_EQ(active[0].expires, kT0 + 3600 * kS);
  EXPECT_EQ(active[1].target.to_string(), "198.51.100.9");
  EXPECT_EQ(active[1].source, BanSource::kManual);
  EXPECT_EQ(s->purge_expired(kT0 + 60 * kS), 1);
  EXPECT_EQ(s->purge_expired(kT0 + 60 * kS), 0);
}

TEST_F(BanStoreTest, ReBanReplacesTheActiveRowAndBothStayInHistory) {
  auto s = open();
  ASSERT_TRUE(s->record_ban({P("192.0.2.7"), "r1", BanSource::kAuto, kT0, kT0 + 60 * kS}));
  ASSERT_TRUE(
      s->record_ban({P("192.0.2.7"), "r2", BanSource::kAuto, kT0 + 50 * kS, kT0 + 7200 * kS}));
  std::vector<BanRecord> active;
  ASSERT_TRUE(s->active_bans(kT0 + 100 * kS, active));
  ASSERT_EQ(active.size(), 1u);
  EXPECT_EQ(active[0].rule, "r2");
  EXPECT_EQ(active[0].expires, kT0 + 7200 * kS);
  std::vector<BanStore::HistoryEntry> h;
  ASSERT_TRUE(s->history(P("192.0.2.7"), h));
  ASSERT_EQ(h.size(), 2u);
  EXPECT_EQ(h[0].rule, "r1");
  EXPECT_EQ(h[1].rule, "r2");
}

TEST_F(BanStoreTest, UnbanEndsTheBanAndIsLoggedWithTheRuleItEnded) {
  auto s = open();
  ASSERT_TRUE(s->record_ban({P("2001:db8:1::/64"), "spray", BanSource::kAuto, kT0, kT0 + 60 * kS}));
  ASSERT_TRUE(s->record_unban(P("2001:db8:1::/64"), BanSource::kManual, kT0 + 10 * kS));
  std::vector<BanRecord> active;
  ASSERT_TRUE(s->active_bans(kT0 + 10 * kS, active));
  EXPECT_TRUE(active.empty());
  std::vector<BanStore::HistoryEntry> h;
  ASSERT_TRUE(s->history(P("2001:db8:1::/64"), h));
  ASSERT_EQ(h.size(), 2u);
  EXPECT_TRUE(h[0].ban);
  EXPECT_FALSE(h[1].ban);
  EXPECT_EQ(h[1].rule, "spray");
  EXPECT_EQ(h[1].source, BanSource::kManual);
  EXPECT_EQ(h[1].created, kT0 + 10 * kS);
  // Unbanning something never banned is recorded too, and harmless.
  ASSERT_TRUE(s->record_unban(P("192.0.2.1"), BanSource::kManual, kT0));
  ASSERT_TRUE(s->history(P("192.0.2.1"), h));
  ASSERT_EQ(h.size(), 1u);
  EXPECT_EQ(h[0].rule, "");
  EXPECT_EQ(s->prune_history(kT0 + 5 * kS), 2);
}

TEST_F(BanStoreTest, SharesTheFileWithAnotherConnectionUsingWal) {
  // The rules stage's offence history lives in the same file through its own connection.
  auto s = open();
  sqlite3* other = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &other), SQLITE_OK);
  sqlite3_busy_timeout(other, 5000);
  ASSERT_EQ(sqlite3_exec(other,
                         "CREATE TABLE IF NOT EXISTS rule_offences(target TEXT, rule TEXT, "
                         "time_us INTEGER); BEGIN; INSERT INTO rule_offences VALUES "
                         "('192.0.2.7', 'r1', 1);",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  // WAL: a reader is not blocked by the other connection's open write transaction.
  std::vector<BanRecord> active;
  EXPECT_TRUE(s->active_bans(kT0, active)) << s->last_error();
  ASSERT_EQ(sqlite3_exec(other, "COMMIT", nullptr, nullptr, nullptr), SQLITE_OK);
  ASSERT_TRUE(s->record_ban({P("192.0.2.7"), "r1", BanSource::kAuto, kT0, kT0 + 60 * kS}));
  sqlite3_stmt* st = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(other, "PRAGMA journal_mode", -1, &st, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
  EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(st, 0)), "wal");
  sqlite3_finalize(st);
  ASSERT_EQ(sqlite3_prepare_v2(other, "SELECT count(*) FROM ban_active", -1, &st, nullptr),
            SQLITE_OK);
  ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
  EXPECT_EQ(sqlite3_column_int(st, 0), 1);
  sqlite3_finalize(st);
  sqlite3_close(other);
}

TEST_F(BanStoreTest, ManyBansAreWrittenInOneTransaction) {
  auto s = open();
  std::vector<BanRecord> bans;
  for (int i = 0; i < 20000; ++i) {
    IpAddress a;
    a.is_v4 = true;
    a.bytes[0] = 10;
    a.bytes[1] = static_cast<std::uint8_t>(i >> 16);
    a.bytes[2] = static_cast<std::uint8_t>(i >> 8);
    a.bytes[3] = static_cast<std::uint8_t>(i);
    bans.push_back({IpPrefix::of(a, 32), "bulk", BanSource::kAuto, kT0, kT0 + 600 * kS});
  }
  ASSERT_TRUE(s->record_bans(bans));
  std::vector<BanRecord> active;
  ASSERT_TRUE(s->active_bans(kT0, active));
  EXPECT_EQ(active.size(), 20000u);
}

TEST_F(BanStoreTest, UnwritableLocationIsOneClearError) {
  std::string error;
  auto s = BanStore::open(dir_ + "/missing-dir/state.db", error);
  EXPECT_EQ(s, nullptr);
  EXPECT_NE(error.find("missing-dir/state.db"), std::string::npos) << error;
}

}  // namespace
}  // namespace authwall::state
