// The daemon's ban book, its JSON/table output, and the control socket round trip.
#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <future>
#include <filesystem>
#include <string>
#include <thread>

#include <gtest/gtest.h>
#include <sqlite3.h>

#include "app/control_socket.h"
#include "app/ban_book.h"
#include "app/pipeline.h"
#include "actions/dry_run_backend.h"
#include "state/ban_store.h"

namespace authwall::app {
namespace {

constexpr UnixMicros kNow = 1'795'000'000LL * kMicrosPerSecond;  // 2026-11-18T...

IpPrefix prefix(const char* text) {
  IpPrefix p;
  EXPECT_TRUE(IpPrefix::parse(text, p)) << text;
  return p;
}

TEST(BanBook, FindsCoversListsAndExpires) {
  BanBook book;
  book.put({prefix("192.0.2.7"), "bruteforce", kNow, kNow + 3600 * kMicrosPerSecond, 1});
  book.put({prefix("2001:db8:1::/64"), "bruteforce", kNow, kNow + 60 * kMicrosPerSecond, 2});
  book.put({prefix("198.51.100.0/24"), "manual", kNow, kNow + 7200 * kMicrosPerSecond, 1});
  EXPECT_TRUE(book.find(prefix("192.0.2.7"), kNow));
  EXPECT_FALSE(book.find(prefix("192.0.2.8"), kNow));
  ASSERT_TRUE(book.covering(prefix("198.51.100.9"), kNow));
  EXPECT_EQ(book.covering(prefix("198.51.100.9"), kNow)->rule, "manual");
  EXPECT_FALSE(book.covering(prefix("198.51.0.0/16"), kNow));  // wider than any ban
  EXPECT_EQ(book.inside(prefix("192.0.2.0/24"), kNow).size(), 1u);
  EXPECT_TRUE(book.inside(prefix("192.0.2.7"), kNow).empty());  // not strictly inside itself
  const auto list = book.list(kNow);
  ASSERT_EQ(list.size(), 3u);
  EXPECT_EQ(list[0].target.to_string(), "2001:db8:1::/64");  // soonest expiry first
  // Expired bans vanish from every view, then from the book.
  const UnixMicros later = kNow + 61 * kMicrosPerSecond;
  EXPECT_EQ(book.count(later), 2u);
  EXPECT_FALSE(book.find(prefix("2001:db8:1::/64"), later));
  book.prune(later);
  book.erase(prefix("192.0.2.7"));
  EXPECT_EQ(book.count(kNow), 1u);
}

TEST(BanOutput, JsonHasTargetRuleAndRfc3339Expiry) {
  const std::vector<ActiveBan> bans{
      {prefix("2001:db8:1::/64"), "mail-auth-bruteforce", kNow, kNow + 90 * kMicrosPerSecond + 5, 3}};
  const std::string json = format_bans_json(bans, kNow);
  EXPECT_EQ(json, "[\n  {\"target\": \"2001:db8:1::/64\", \"rule\": \"mail-auth-bruteforce\", "
                  "\"expires\": \"" + format_rfc3339(kNow + 90 * kMicrosPerSecond) +
                  "\", \"created\": \"" + format_rfc3339(kNow) +
                  "\", \"remaining_seconds\": 91, \"offence\": 3}\n]\n");
  EXPECT_EQ(format_bans_json({}, kNow), "[]\n");
  EXPECT_EQ(format_bans_table({}, kNow), "no active bans\n");
  const std::string table = format_bans_table(bans, kNow);
  EXPECT_NE(table.find("TARGET"), std::string::npos);
  EXPECT_NE(table.find("2001:db8:1::/64  mail-auth-bruteforce"), std::string::npos) << table;
}

// The actions thread's batch logic against the dry-run backend and a real SQLite store.
struct ActionsFixture : ::testing::Test {
  std::filesystem::path dir = std::filesystem::temp_directory_path() /
                              ("authwall-actions-test-" + std::to_string(::getpid()));
  MetricsRegistry registry;
  PipelineMetrics metrics{registry};
  actions::DryRunBanBackend backend;
  std::unique_ptr<state::BanStore> store;
  BanBook book;
  ActionQueue queue{16};
  std::unique_ptr<ActionsWorker> worker;

  void SetUp() override {
    std::filesystem::create_directories(dir);
    std::string error;
    store = state::BanStore::open((dir / "state.db").string(), error);
    ASSERT_TRUE(store) << error;
    ASSERT_TRUE(backend.prepare().ok);
    worker = std::make_unique<ActionsWorker>(backend, *store, book, queue, metrics);
  }
  void TearDown() override { std::filesystem::remove_all(dir); }

  static ActionRequest ban(const char* target, const char* rule, std::int64_t seconds,
                           UnixMicros received = 0) {
    ActionRequest r;
    r.kind = ActionRequest::Kind::ban;
    r.target = prefix(target);
    r.rule.assign(rule);
    r.duration_seconds = seconds;
    r.received = received;
    return r;
  }
  static ActionRequest unban(const char* target) {  // as `authwall unban` sends it
    ActionRequest r;
    r.kind = ActionRequest::Kind::unban;
    r.manual = true;
    r.target = prefix(target);
    return r;
  }
};

TEST_F(ActionsFixture, BatchCommitsPersistsCountsAndMeasuresLatency) {
  std::vector<ActionRequest> batch;
  const UnixMicros received = wall_now() - 2000;  // 2 ms before the commit, at least
  batch.push_back(ban("192.0.2.7", "bruteforce", 3600, received));
  batch.push_back(ban("192.0.2.7", "spray", 600, received));  // same target, shorter: no change
  batch.push_back(ban("2001:db8:1::/64", "bruteforce", 7200, received));
  worker->process(batch);
  const UnixMicros now = wall_now();
  ASSERT_TRUE(book.find(prefix("192.0.2.7"), now));
  EXPECT_EQ(book.find(prefix("192.0.2.7"), now)->rule, "bruteforce");
  EXPECT_EQ(book.count(now), 2u);
  EXPECT_EQ(backend.size(now), 2u);
  std::vector<state::BanRecord> stored;
  ASSERT_TRUE(store->active_bans(now, stored));
  EXPECT_EQ(stored.size(), 2u);
  EXPECT_EQ(metrics.bans_for_rule("bruteforce").value(), 2u);
  EXPECT_EQ(metrics.redundant->value(), 1u);
  EXPECT_EQ(metrics.firewall_batches->value(), 1u);
  EXPECT_EQ(metrics.ban_latency->count(), 2u);
  EXPECT_GE(metrics.ban_latency->sum(), 2 * 0.002);
}

TEST_F(ActionsFixture, WiderBanReplacesNarrowerOnesAndCoveredDecisionsChangeNothing) {
  std::vector<ActionRequest> batch{ban("198.51.100.7", "bruteforce", 600)};
  worker->process(batch);
  batch = {ban("198.51.100.0/24", "manual", 7200)};
  worker->process(batch);
  const UnixMicros now = wall_now();
  EXPECT_FALSE(book.find(prefix("198.51.100.7"), now));  // replaced, not refused with EEXIST
  EXPECT_TRUE(book.find(prefix("198.51.100.0/24"), now));
  EXPECT_EQ(backend.size(now), 1u);
  EXPECT_EQ(metrics.firewall_errors->value(), 0u);
  // A later decision inside the longer prefix ban needs no firewall change.
  batch = {ban("198.51.100.9", "bruteforce", 600)};
  worker->process(batch);
  EXPECT_EQ(metrics.redundant->value(), 1u);
  EXPECT_EQ(metrics.firewall_batches->value(), 2u);
  std::vector<state::BanRecord> stored;
  ASSERT_TRUE(store->active_bans(now, stored));
  ASSERT_EQ(stored.size(), 1u);
  EXPECT_EQ(stored[0].target.to_string(), "198.51.100.0/24");
}

// Overlapping bans: nftables interval sets refuse overlapping elements, so a ban inside a
// wider one that ends sooner waits in the book and the store and takes over when it ends.
struct OverlapFixture : ActionsFixture {
  std::vector<std::string> firewall(UnixMicros now) {
    std::vector<actions::SetElement> l;
    std::string error;
    EXPECT_TRUE(backend.list(l, now, error)) << error;
    std::vector<std::string> out;
    for (const auto& e : l) out.push_back(e.prefix.to_string());
    return out;
  }
  bool held(const char* target, UnixMicros now) {
    const auto b = book.find(prefix(target), now);
    EXPECT_TRUE(b) << target << " is not in the book";
    return b && !b->in_firewall;
  }
  std::size_t stored(UnixMicros now) {
    std::vector<state::BanRecord> records;
    EXPECT_TRUE(store->active_bans(now, records));
    return records.size();
  }
  void run(std::initializer_list<ActionRequest> requests) {
    std::vector<ActionRequest> batch(requests);
    worker->process(batch);
  }
  // Every change went in with its first commit: nothing overlapped (the kernel would refuse).
  void TearDown() override {
    EXPECT_EQ(backend.stats().batches_failed, 0u);
    EXPECT_EQ(metrics.firewall_errors->value(), 0u);
    ActionsFixture::TearDown();
  }
  static constexpr UnixMicros kS = kMicrosPerSecond;
  static constexpr std::int64_t kWeek = 7 * 86400;
};

TEST_F(OverlapFixture, AWiderBanThatEndsSoonerHoldsTheLongerOneInsideUntilItEnds) {
  run({ban("198.51.100.7", "bruteforce", kWeek)});
  run({ban("198.51.100.0/24", "manual", 600)});
  const UnixMicros now = wall_now();
  // The /24 is in the firewall; the address keeps its week, held in the book and the store.
  EXPECT_EQ(firewall(now), std::vector<std::string>{"198.51.100.0/24"});
  EXPECT_TRUE(held("198.51.100.7", now));
  EXPECT_EQ(stored(now), 2u);
  EXPECT_EQ(book.count(now), 2u);
  worker->release_held(now + 500 * kS);  // the /24 still has 100 s: nothing changes
  EXPECT_EQ(firewall(now + 500 * kS), std::vector<std::string>{"198.51.100.0/24"});
  // Within the lead before the /24 ends, the address takes over in the same commit.
  const UnixMicros later = now + 599 * kS;
  worker->release_held(later);
  EXPECT_EQ(firewall(later), std::vector<std::string>{"198.51.100.7"});
  EXPECT_FALSE(held("198.51.100.7", later));
  EXPECT_FALSE(book.find(prefix("198.51.100.0/24"), later));
  EXPECT_EQ(metrics.firewall_errors->value(), 0u);
}

TEST_F(OverlapFixture, ABanInsideAWiderOneThatEndsSoonerIsHeldNotRefused) {
  run({ban("198.51.100.0/24", "manual", 600)});
  auto promise = std::make_shared<std::promise<std::string>>();
  auto reply = promise->get_future();
  ActionRequest r = ban("198.51.100.7", "bruteforce", kWeek);
  r.reply = promise;
  std::vector<ActionRequest> batch;
  batch.push_back(std::move(r));
  worker->process(batch);
  EXPECT_NE(reply.get().find("it takes over then"), std::string::npos);
  const UnixMicros now = wall_now();
  EXPECT_EQ(metrics.firewall_errors->value(), 0u);
  EXPECT_EQ(firewall(now), std::vector<std::string>{"198.51.100.0/24"});
  EXPECT_TRUE(held("198.51.100.7", now));
  EXPECT_EQ(metrics.bans_for_rule("bruteforce").value(), 1u);
  worker->release_held(now + 599 * kS);
  EXPECT_EQ(firewall(now + 599 * kS), std::vector<std::string>{"198.51.100.7"});
}

TEST_F(OverlapFixture, NestedBansInOneBatchInEitherOrder) {
  run({ban("198.51.100.7", "bruteforce", kWeek), ban("198.51.100.0/24", "manual", 600),
       ban("2001:db8:1::/64", "bruteforce", 600), ban("2001:db8:1::5", "bruteforce", kWeek)});
  const UnixMicros now = wall_now();
  EXPECT_EQ(metrics.firewall_errors->value(), 0u);
  EXPECT_EQ(firewall(now), (std::vector<std::string>{"198.51.100.0/24", "2001:db8:1::/64"}));
  EXPECT_TRUE(held("198.51.100.7", now));
  EXPECT_TRUE(held("2001:db8:1::5", now));
  EXPECT_EQ(stored(now), 4u);
}

TEST_F(OverlapFixture, ABanAndTheUnbanOfWhatItCoversInOneBatch) {
  run({ban("198.51.100.7", "bruteforce", 600)});
  ActionRequest u = unban("198.51.100.7");
  run({ban("198.51.100.0/24", "manual", 3600), u});  // the unban goes first in the commit
  const UnixMicros now = wall_now();
  EXPECT_EQ(firewall(now), std::vector<std::string>{"198.51.100.0/24"});
  EXPECT_FALSE(book.find(prefix("198.51.100.7"), now));
}

TEST_F(OverlapFixture, AHeldBanCanBeUnbanned) {
  run({ban("198.51.100.7", "bruteforce", kWeek)});
  run({ban("198.51.100.0/24", "manual", 600)});
  auto promise = std::make_shared<std::promise<std::string>>();
  auto reply = promise->get_future();
  ActionRequest u = unban("198.51.100.7");
  u.reply = promise;
  std::vector<ActionRequest> batch;
  batch.push_back(std::move(u));
  worker->process(batch);
  EXPECT_EQ(reply.get(), "ok\nunbanned 198.51.100.7\n");  // not refused as an overlap
  const UnixMicros now = wall_now();
  EXPECT_FALSE(book.find(prefix("198.51.100.7"), now));
  EXPECT_EQ(stored(now), 1u);
  worker->release_held(now + 599 * kS);  // nothing takes over when the /24 ends
  EXPECT_EQ(firewall(now + 599 * kS), std::vector<std::string>{"198.51.100.0/24"});
}

TEST_F(OverlapFixture, ABanInsideALongerBanOfTheSameBatchIsRedundant) {
  run({ban("198.51.100.7", "bruteforce", 600), ban("198.51.100.0/24", "manual", kWeek)});
  const UnixMicros now = wall_now();
  EXPECT_EQ(firewall(now), std::vector<std::string>{"198.51.100.0/24"});
  EXPECT_FALSE(book.find(prefix("198.51.100.7"), now));  // neither held nor recorded
  EXPECT_EQ(stored(now), 1u);
  EXPECT_EQ(metrics.redundant->value(), 1u);
}

TEST_F(OverlapFixture, AReBanCoveredByALongerBanOfTheSameBatchLeavesTheBookRight) {
  run({ban("198.51.100.7", "bruteforce", 600)});
  run({ban("198.51.100.0/24", "manual", kWeek), ban("198.51.100.7", "bruteforce", 1200)});
  const UnixMicros now = wall_now();
  EXPECT_EQ(firewall(now), std::vector<std::string>{"198.51.100.0/24"});
  // Superseded: its element is gone and the /24 outlasts it.
  EXPECT_FALSE(book.find(prefix("198.51.100.7"), now));
  EXPECT_EQ(stored(now), 1u);
}

TEST_F(OverlapFixture, ThreeLevelsTakeOverOneAfterTheOther) {
  run({ban("198.51.0.0/16", "manual", 600)});
  run({ban("198.51.100.0/24", "manual", 1200)});
  run({ban("198.51.100.7", "bruteforce", kWeek)});
  const UnixMicros now = wall_now();
  EXPECT_EQ(firewall(now), std::vector<std::string>{"198.51.0.0/16"});
  worker->release_held(now + 599 * kS);  // the /24 takes over; the address is still inside it
  EXPECT_EQ(firewall(now + 599 * kS), std::vector<std::string>{"198.51.100.0/24"});
  EXPECT_TRUE(held("198.51.100.7", now + 599 * kS));
  worker->release_held(now + 1199 * kS);
  EXPECT_EQ(firewall(now + 1199 * kS), std::vector<std::string>{"198.51.100.7"});
  EXPECT_EQ(metrics.firewall_errors->value(), 0u);
}

TEST_F(OverlapFixture, UnbanningTheWiderBanLetsTheHeldOneTakeOverAtOnce) {
  run({ban("198.51.100.0/24", "manual", 600)});
  run({ban("198.51.100.7", "bruteforce", kWeek)});
  ActionRequest u = unban("198.51.100.0/24");
  run({u});
  const UnixMicros now = wall_now();
  EXPECT_EQ(firewall(now), std::vector<std::string>{"198.51.100.7"});
  EXPECT_FALSE(held("198.51.100.7", now));
  EXPECT_EQ(metrics.firewall_errors->value(), 0u);
}

TEST_F(ActionsFixture, AnAutomaticBanTheFirewallRefusesIsHeldAndRetried) {
  // A foreign element overlapping the ban makes the set refuse it (EEXIST).
  ASSERT_TRUE(backend.apply(std::vector<actions::BanChange>{actions::BanChange::add(prefix("10.0.0.0/16"), 3600)},
                            wall_now()).ok());
  std::vector<ActionRequest> batch{ban("10.0.0.5", "bruteforce", 600)};
  worker->process(batch);
  UnixMicros now = wall_now();
  EXPECT_GE(metrics.firewall_errors->value(), 1u);
  // The rules engine counts it as in force, so it is not forgotten: held in the book, kept in
  // the store, retried.
  ASSERT_TRUE(book.find(prefix("10.0.0.5"), now));
  EXPECT_FALSE(book.find(prefix("10.0.0.5"), now)->in_firewall);
  std::vector<state::BanRecord> stored;
  ASSERT_TRUE(store->active_bans(now, stored));
  EXPECT_EQ(stored.size(), 1u);
  const std::uint64_t errors = metrics.firewall_errors->value();
  worker->release_held(now);  // still refused
  EXPECT_EQ(metrics.firewall_errors->value(), errors + 1);
  ASSERT_TRUE(backend.apply(std::vector<actions::BanChange>{actions::BanChange::remove(prefix("10.0.0.0/16"))},
                            now).ok());
  worker->release_held(now);
  EXPECT_TRUE(book.find(prefix("10.0.0.5"), now)->in_firewall);
  EXPECT_EQ(backend.size(now), 1u);
  EXPECT_EQ(metrics.firewall_errors->value(), errors + 1);
}

TEST_F(ActionsFixture, StoreWritesThatFailAreRetriedInOrder) {
  // Another connection holds the database locked: the ban's record fails (after SQLite's
  // busy timeout), then the lock goes away and the next batch unbans the same target.
  sqlite3* other = nullptr;
  ASSERT_EQ(sqlite3_open((dir / "state.db").string().c_str(), &other), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(other, "BEGIN EXCLUSIVE", nullptr, nullptr, nullptr), SQLITE_OK);
  std::vector<ActionRequest> batch{ban("192.0.2.7", "bruteforce", 600)};
  worker->process(batch);
  EXPECT_GE(metrics.store_errors->value(), 1u);
  EXPECT_EQ(backend.size(wall_now()), 1u);  // the firewall did not wait for the database
  ASSERT_EQ(sqlite3_exec(other, "COMMIT", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(other);
  ActionRequest u = unban("192.0.2.7");
  batch.clear();
  batch.push_back(std::move(u));
  worker->process(batch);
  // The ban was written before its unban: nothing active, and the history has both in order.
  std::vector<state::BanRecord> stored;
  ASSERT_TRUE(store->active_bans(wall_now(), stored));
  EXPECT_TRUE(stored.empty());
  std::vector<state::BanStore::HistoryEntry> history;
  ASSERT_TRUE(store->history(prefix("192.0.2.7"), history));
  ASSERT_EQ(history.size(), 2u);
  EXPECT_TRUE(history[0].ban);
  EXPECT_FALSE(history[1].ban);
}

TEST_F(ActionsFixture, ManualRequestsGetReplies) {
  auto promise = std::make_shared<std::promise<std::string>>();
  auto future = promise->get_future();
  ActionRequest r = ban("203.0.113.9", "manual", 60);
  r.manual = true;
  r.reply = promise;
  std::vector<ActionRequest> batch;
  batch.push_back(std::move(r));
  worker->process(batch);
  EXPECT_EQ(future.get().rfind("ok\nbanned 203.0.113.9 until ", 0), 0u);

  auto p2 = std::make_shared<std::promise<std::string>>();
  auto f2 = p2->get_future();
  ActionRequest u = unban("203.0.113.9");
  u.reply = p2;
  batch.clear();
  batch.push_back(std::move(u));
  worker->process(batch);
  EXPECT_EQ(f2.get(), "ok\nunbanned 203.0.113.9\n");
  EXPECT_EQ(book.count(wall_now()), 0u);
  EXPECT_EQ(metrics.unbans->value(), 1u);
  // The queue side: bounded, non-blocking.
  for (int i = 0; i < 16; ++i) EXPECT_TRUE(queue.push(ban("192.0.2.1", "x", 1)));
  EXPECT_FALSE(queue.push(ban("192.0.2.1", "x", 1)));
  EXPECT_EQ(queue.depth(), 16u);
}

TEST(SameDefinition, IgnoresPositionButNotBehaviour) {
  rules::RuleSpec a;
  a.name = "r";
  a.file = "a.yaml";
  a.line = 3;
  a.window_seconds = 600;
  a.threshold = 5;
  a.ban.duration_seconds = 3600;
  rules::RuleSpec b = a;
  b.file = "b.yaml";
  b.line = 9;
  EXPECT_TRUE(same_definition(a, b));
  b.threshold = 6;
  EXPECT_FALSE(same_definition(a, b));
  b = a;
  b.match.fields[0] = rules::FieldCondition{{"imap"}, false};
  EXPECT_FALSE(same_definition(a, b));
  b = a;
  b.prefix_v6 = 48;
  EXPECT_FALSE(same_definition(a, b));
}

TEST(ControlSocket, RoundTripModeAndNotRunningError) {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("authwall-control-test-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "sub" / "control.sock").string();

  std::string reply;
  std::string error;
  EXPECT_FALSE(control_request(path, "bans json", reply, error));
  EXPECT_EQ(error, "authwall is not running (no control socket at " + path + ")");

  boost::asio::io_context io;
  ControlSocketServer server(io, [](std::string_view request) {
    return "ok\nyou said: " + std::string(request) + "\n";
  });
  ASSERT_TRUE(server.listen(path, 0600, error)) << error;
  struct stat st{};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  // A second daemon on the same socket is refused while the first one answers.
  {
    boost::asio::io_context io2;
    ControlSocketServer second(io2, [](std::string_view) { return std::string(); });
    std::thread t([&] { io.run_for(std::chrono::milliseconds(500)); });
    std::string e2;
    EXPECT_FALSE(second.listen(path, 0600, e2));
    EXPECT_NE(e2.find("already running"), std::string::npos) << e2;
    t.join();
  }
  io.restart();
  std::thread t([&] { io.run_for(std::chrono::seconds(5)); });
  ASSERT_TRUE(control_request(path, "ban 192.0.2.7 3600", reply, error)) << error;
  EXPECT_EQ(reply, "ok\nyou said: ban 192.0.2.7 3600\n");
  server.stop();
  t.join();
  EXPECT_FALSE(std::filesystem::exists(path));  // removed on stop
  std::filesystem::remove_all(dir);
}

TEST(ControlSocket, ASlowHandlerStillGetsItsReplyOut) {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("authwall-control-slow-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "control.sock").string();
  boost::asio::io_context io;
  // The handler (a ban waiting for a busy state database) outlasts the request deadline, and
  // its reply (a long `bans` list) is more than the socket's buffer takes at once.
  const std::string long_reply = "ok\n" + std::string(4 << 20, 'x') + "\n";
  ControlSocketServer server(
      io,
      [&](std::string_view) {
        std::this_thread::sleep_for(std::chrono::milliseconds(600));
        return long_reply;
      },
      std::chrono::milliseconds(300), std::chrono::seconds(10));
  std::string error;
  ASSERT_TRUE(server.listen(path, 0600, error)) << error;
  std::thread t([&] { io.run_for(std::chrono::seconds(5)); });
  std::string reply;
  EXPECT_TRUE(control_request(path, "bans text", reply, error)) << error;
  EXPECT_EQ(reply.size(), long_reply.size());
  EXPECT_TRUE(reply == long_reply);
  server.stop();
  t.join();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace authwall::app
