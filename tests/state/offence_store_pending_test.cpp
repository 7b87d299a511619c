// SqliteOffenceStore keeps records in memory until flush() (state/offence_store.h): they count
// at once, reach the database only when flushed (or at a clean close), are lost by a crash
// before the flush, survive a failed flush, and the pending list is bounded.
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <string>

#include "state/offence_store.h"
#include "tests/temp_dir.h"

using namespace authwall;
using authwall::testing::TempDir;

namespace {

constexpr UnixMicros kT = 1795860000LL * kMicrosPerSecond;

// What another process would find in the file: rows of rule_offences, through a connection of
// its own. -1 if the query fails.
int rows_in_database(const std::string& db) {
  sqlite3* c = nullptr;
  if (sqlite3_open(db.c_str(), &c) != SQLITE_OK) {
    sqlite3_close(c);
    return -1;
  }
  sqlite3_stmt* stmt = nullptr;
  int n = -1;
  if (sqlite3_prepare_v2(c, "SELECT count(*) FROM rule_offences", -1, &stmt, nullptr) == SQLITE_OK &&
      sqlite3_step(stmt) == SQLITE_ROW) {
    n = sqlite3_column_int(stmt, 0);
  }
  sqlite3_finalize(stmt);
  sqlite3_close(c);
  return n;
}

bool exec(const std::string& db, const char* sql) {
  sqlite3* c = nullptr;
  const bool ok = sqlite3_open(db.c_str(), &c) == SQLITE_OK &&
                  sqlite3_exec(c, sql, nullptr, nullptr, nullptr) == SQLITE_OK;
  sqlite3_close(c);
  return ok;
}

// Each test: a fresh directory with the database path in it; open_store() opens (or reopens)
// the store on it, reporting the open error as a test failure.
class SqliteOffenceStorePending : public ::testing::Test {
 protected:
  std::unique_ptr<state::SqliteOffenceStore> open_store() {
    std::string error;
    auto store = state::SqliteOffenceStore::open(db, error);
    EXPECT_TRUE(store) << error;
    return store;
  }
  TempDir dir{"authwall-offences-pending"};
  const std::string db = dir.file("state.db");
};

TEST_F(SqliteOffenceStorePending, CountedAtOnceWrittenOnlyByFlush) {
  auto store = open_store();
  ASSERT_TRUE(store);
  // Two quick bans of one target: the second must see the first (escalation) before any flush.
  EXPECT_EQ(store->count_since("192.0.2.7", "brute", 0), 0u);
  ASSERT_TRUE(store->record("192.0.2.7", "brute", kT));
  EXPECT_EQ(store->count_since("192.0.2.7", "brute", 0), 1u);
  ASSERT_TRUE(store->record("192.0.2.7", "brute", kT + 5));
  ASSERT_TRUE(store->record("192.0.2.7", "spray", kT + 5));
  ASSERT_TRUE(store->record("192.0.2.8", "brute", kT + 5));
  EXPECT_EQ(store->count_since("192.0.2.7", "brute", 0), 2u);
  EXPECT_EQ(store->count_since("192.0.2.7", "brute", kT + 1), 1u);  // `since` applies to pending too
  EXPECT_EQ(store->count_since("192.0.2.7", "spray", 0), 1u);
  EXPECT_EQ(store->count_since("192.0.2.9", "brute", 0), 0u);
  EXPECT_EQ(store->pending(), 4u);
  EXPECT_EQ(rows_in_database(db), 0);

  ASSERT_TRUE(store->flush()) << store->last_error();
  EXPECT_EQ(store->pending(), 0u);
  EXPECT_EQ(rows_in_database(db), 4);
  // Flushed records are counted once, from the database now.
  EXPECT_EQ(store->count_since("192.0.2.7", "brute", 0), 2u);
  EXPECT_EQ(store->count_since("192.0.2.7", "brute", kT + 1), 1u);
  // Old and new together.
  ASSERT_TRUE(store->record("192.0.2.7", "brute", kT + 10));
  EXPECT_EQ(store->count_since("192.0.2.7", "brute", 0), 3u);
  EXPECT_TRUE(store->flush());
  EXPECT_TRUE(store->flush());  // nothing pending: nothing to do
  EXPECT_EQ(rows_in_database(db), 5);
}

TEST_F(SqliteOffenceStorePending, FlushedRecordsSurviveReopening) {
  {
    auto store = open_store();
    ASSERT_TRUE(store);
    ASSERT_TRUE(store->record("2001:db8::/64", "brute", kT));
    ASSERT_TRUE(store->flush());
    // Recorded after the flush: a clean close (the destructor) writes it as well.
    ASSERT_TRUE(store->record("2001:db8::/64", "brute", kT + 1));
  }
  auto store = open_store();
  ASSERT_TRUE(store);
  EXPECT_EQ(store->pending(), 0u);
  EXPECT_EQ(store->count_since("2001:db8::/64", "brute", 0), 2u);
}

TEST_F(SqliteOffenceStorePending, CrashBeforeFlushLosesOnlyTheUnflushedRecords) {
  // The child records two offences, flushes only the first and dies without running any
  // destructor (as a kill -9 would). Nothing in it touches gtest.
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    std::string error;
    auto store = state::SqliteOffenceStore::open(db, error);
    if (!store || !store->record("192.0.2.7", "brute", kT) || !store->flush() ||
        !store->record("192.0.2.7", "brute", kT + 1) || store->pending() != 1) {
      ::_exit(2);
    }
    ::_exit(0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  ASSERT_EQ(WEXITSTATUS(status), 0);
  auto store = open_store();
  ASSERT_TRUE(store);
  EXPECT_EQ(store->count_since("192.0.2.7", "brute", 0), 1u);
  EXPECT_EQ(rows_in_database(db), 1);
}

TEST_F(SqliteOffenceStorePending, FailedFlushKeepsRecordsForTheNextOne) {
  auto store = open_store();
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->record("192.0.2.7", "brute", kT));
  // Another connection takes the table away: the INSERT fails, the transaction rolls back.
  ASSERT_TRUE(exec(db, "DROP TABLE rule_offences"));
  EXPECT_FALSE(store->flush());
  EXPECT_FALSE(store->last_error().empty());
  EXPECT_EQ(store->pending(), 1u);
  ASSERT_TRUE(exec(db, "CREATE TABLE rule_offences(target TEXT NOT NULL, rule TEXT NOT NULL, "
                       "time_us INTEGER NOT NULL)"));
  ASSERT_TRUE(store->flush()) << store->last_error();
  EXPECT_EQ(store->pending(), 0u);
  EXPECT_EQ(rows_in_database(db), 1);
  EXPECT_EQ(store->count_since("192.0.2.7", "brute", 0), 1u);
}

TEST_F(SqliteOffenceStorePending, FullPendingListIsWrittenInline) {
  auto store = open_store();
  ASSERT_TRUE(store);
  const std::size_t max = state::SqliteOffenceStore::kMaxPending;
  for (std::size_t i = 0; i < max; ++i) {
    ASSERT_TRUE(store->record("192.0.2.7", "brute", kT + static_cast<UnixMicros>(i)));
  }
  EXPECT_EQ(store->pending(), max);
  EXPECT_EQ(rows_in_database(db), 0);
  ASSERT_TRUE(store->record("192.0.2.7", "brute", kT + static_cast<UnixMicros>(max)));
  EXPECT_EQ(store->pending(), 1u);
  EXPECT_EQ(rows_in_database(db), static_cast<int>(max));
  EXPECT_EQ(store->count_since("192.0.2.7", "brute", 0), max + 1);
}

TEST_F(SqliteOffenceStorePending, PruneRemovesOldRecordsPendingOrNot) {
  auto store = open_store();
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->record("192.0.2.7", "brute", kT));
  ASSERT_TRUE(store->flush());
  ASSERT_TRUE(store->record("192.0.2.7", "brute", kT + 10));  // pending, old
  ASSERT_TRUE(store->record("192.0.2.7", "brute", kT + 100));  // pending, kept
  EXPECT_EQ(store->prune(kT + 50), 2);
  EXPECT_EQ(store->pending(), 1u);
  EXPECT_EQ(store->count_since("192.0.2.7", "brute", 0), 1u);
  ASSERT_TRUE(store->flush());
  EXPECT_EQ(rows_in_database(db), 1);
}

}  // namespace

namespace {

// count_since answers from memory, loaded at open: the I/O worker deciding a ban never reads
// the database (which may be slow, locked or, here, changed underneath by another connection).
TEST_F(SqliteOffenceStorePending, CountsFromMemoryWithoutReadingTheDatabase) {
  {
    auto first = open_store();
    ASSERT_TRUE(first);
    ASSERT_TRUE(first->record("192.0.2.7", "brute", kT));
    ASSERT_TRUE(first->record("192.0.2.7", "brute", kT + 1));
  }  // flushed at close
  auto store = open_store();
  ASSERT_TRUE(store);
  EXPECT_EQ(store->count_since("192.0.2.7", "brute", 0), 2u);  // loaded at open
  ASSERT_TRUE(exec(db, "DELETE FROM rule_offences"));
  EXPECT_EQ(store->count_since("192.0.2.7", "brute", 0), 2u);
  EXPECT_TRUE(store->record("192.0.2.7", "brute", kT + 2));
  EXPECT_EQ(store->count_since("192.0.2.7", "brute", kT + 1), 2u);
  EXPECT_EQ(store->count_since("192.0.2.7", "other-rule", 0), 0u);
  EXPECT_TRUE(store->flush()) << store->last_error();
  EXPECT_EQ(rows_in_database(db), 1);
}

}  // namespace
