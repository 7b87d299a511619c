// state::WalCheckpointer (state/sqlite_database.h): its own connection moves what the stores'
// connections wrote to the write-ahead log into the database file itself.
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "state/offence_store.h"
#include "state/sqlite_database.h"
#include "tests/temp_dir.h"

namespace fs = std::filesystem;
using namespace authwall;

namespace {

constexpr UnixMicros kT = 1795860000LL * kMicrosPerSecond;

TEST(WalCheckpointer, MovesOtherConnectionsWritesIntoTheDatabaseFile) {
  const authwall::testing::TempDir dir("authwall-checkpointer");
  const std::string db = dir.file("state.db");
  std::string error;
  auto store = state::SqliteOffenceStore::open(db, error);
  ASSERT_TRUE(store) << error;
  auto checkpointer = state::WalCheckpointer::open(db, error);
  ASSERT_TRUE(checkpointer) << error;
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(store->record("192.0.2.7", "brute", kT + i));
  ASSERT_TRUE(store->flush());
  ASSERT_TRUE(fs::exists(db + "-wal"));
  EXPECT_GT(fs::file_size(db + "-wal"), 0u);  // written to the log, not yet to the file

  EXPECT_EQ(checkpointer->checkpoint(), 0);
  // The database file alone, without its log, now holds the records.
  const std::string copy = (dir.path() / "copy.db").string();
  fs::copy_file(db, copy);
  sqlite3* c = nullptr;
  ASSERT_EQ(sqlite3_open(copy.c_str(), &c), SQLITE_OK);
  sqlite3_stmt* stmt = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(c, "SELECT count(*) FROM rule_offences", -1, &stmt, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(stmt), SQLITE_ROW);
  EXPECT_EQ(sqlite3_column_int(stmt, 0), 100);
  sqlite3_finalize(stmt);
  sqlite3_close(c);
  // Nothing new: nothing left.
  EXPECT_EQ(checkpointer->checkpoint(), 0);
}

TEST(WalCheckpointer, UnopenablePathIsOneClearError) {
  std::string error;
  EXPECT_FALSE(state::WalCheckpointer::open("/nonexistent-dir/authwall/state.db", error));
  EXPECT_NE(error.find("/nonexistent-dir/authwall/state.db"), std::string::npos) << error;
}

}  // namespace
