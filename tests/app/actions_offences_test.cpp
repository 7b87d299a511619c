// The actions thread makes the rules engines' offence history durable (app/pipeline.h): the
// engines only note offences in memory while deciding; process() flushes them after the kernel
// commit, run() when idle and before it ends.
#include <sqlite3.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include <gtest/gtest.h>

#include "actions/dry_run_backend.h"
#include "app/ban_book.h"
#include "app/pipeline.h"
#include "state/ban_store.h"
#include "state/offence_store.h"

namespace authwall::app {
namespace {

int offence_rows(const std::string& db) {
  sqlite3* c = nullptr;
  sqlite3_stmt* stmt = nullptr;
  int n = -1;
  if (sqlite3_open(db.c_str(), &c) == SQLITE_OK &&
      sqlite3_prepare_v2(c, "SELECT count(*) FROM rule_offences", -1, &stmt, nullptr) == SQLITE_OK &&
      sqlite3_step(stmt) == SQLITE_ROW) {
    n = sqlite3_column_int(stmt, 0);
  }
  sqlite3_finalize(stmt);
  sqlite3_close(c);
  return n;
}

struct ActionsOffencesFixture : ::testing::Test {
  std::filesystem::path dir = std::filesystem::temp_directory_path() /
                              ("authwall-actions-offences-" + std::to_string(::getpid()));
  std::string db = (dir / "state.db").string();
  MetricsRegistry registry;
  PipelineMetrics metrics{registry};
  actions::DryRunBanBackend backend;
  std::unique_ptr<state::BanStore> store;
  std::unique_ptr<state::SqliteOffenceStore> offences;
  BanBook book;
  ActionQueue queue{16};
  std::unique_ptr<ActionsWorker> worker;

  void SetUp() override {
    std::filesystem::create_directories(dir);
    std::string error;
    // As in the daemon: both stores on one file, each through its own connection.
    store = state::BanStore::open(db, error);
    ASSERT_TRUE(store) << error;
    offences = state::SqliteOffenceStore::open(db, error);
    ASSERT_TRUE(offences) << error;
    ASSERT_TRUE(backend.prepare().ok);
    worker = std::make_unique<ActionsWorker>(backend, *store, book, queue, metrics, offences.get());
  }
  void TearDown() override {
    worker.reset();
    offences.reset();
    store.reset();
    std::filesystem::remove_all(dir);
  }

  static ActionRequest ban(const char* target) {
    ActionRequest r;
    r.kind = ActionRequest::Kind::ban;
    EXPECT_TRUE(IpPrefix::parse(target, r.target)) << target;
    r.rule.assign("brute");
    r.duration_seconds = 600;
    return r;
  }
};

TEST_F(ActionsOffencesFixture, BatchFlushesTheOffencesBehindIt) {
  const UnixMicros now = wall_now();
  // What a rules engine does when it decides the ban: note the offence, queue the decision.
  ASSERT_TRUE(offences->record("192.0.2.7", "brute", now));
  EXPECT_EQ(offence_rows(db), 0);
  std::vector<ActionRequest> batch{ban("192.0.2.7")};
  worker->process(batch);
  EXPECT_EQ(backend.size(wall_now()), 1u);
  EXPECT_EQ(offences->pending(), 0u);
  EXPECT_EQ(offence_rows(db), 1);
  EXPECT_EQ(metrics.store_errors->value(), 0u);
}

TEST_F(ActionsOffencesFixture, RedundantDecisionIsStillAnOffence) {
  std::vector<ActionRequest> batch{ban("192.0.2.7")};
  worker->process(batch);
  ASSERT_TRUE(offences->record("192.0.2.7", "brute", wall_now()));
  batch = {ban("192.0.2.7")};
  batch[0].duration_seconds = 60;  // already banned for longer: no firewall change
  worker->process(batch);
  EXPECT_EQ(metrics.redundant->value(), 1u);
  EXPECT_EQ(offence_rows(db), 1);
}

TEST_F(ActionsOffencesFixture, RunFlushesBeforeItEnds) {
  ASSERT_TRUE(offences->record("192.0.2.8", "brute", wall_now()));
  ASSERT_TRUE(offences->record("192.0.2.9", "brute", wall_now()));
  queue.close();  // run() returns at once: nothing queued
  worker->run();
  EXPECT_EQ(offences->pending(), 0u);
  EXPECT_EQ(offence_rows(db), 2);
}

TEST_F(ActionsOffencesFixture, FailedFlushIsCountedAndRetried) {
  ASSERT_TRUE(offences->record("192.0.2.7", "brute", wall_now()));
  sqlite3* c = nullptr;
  ASSERT_EQ(sqlite3_open(db.c_str(), &c), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(c, "ALTER TABLE rule_offences RENAME TO moved", nullptr, nullptr, nullptr),
            SQLITE_OK);
  std::vector<ActionRequest> batch{ban("192.0.2.7")};
  worker->process(batch);
  EXPECT_EQ(backend.size(wall_now()), 1u);  // the ban itself stands
  EXPECT_EQ(metrics.store_errors->value(), 1u);
  EXPECT_EQ(offences->pending(), 1u);
  ASSERT_EQ(sqlite3_exec(c, "ALTER TABLE moved RENAME TO rule_offences", nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(c);
  batch = {ban("192.0.2.8")};
  worker->process(batch);
  EXPECT_EQ(offences->pending(), 0u);
  EXPECT_EQ(offence_rows(db), 1);
  EXPECT_EQ(metrics.store_errors->value(), 1u);
}

}  // namespace
}  // namespace authwall::app
