#include "state/offence_store.h"
#include "state/sqlite_database.h"

#include <sqlite3.h>

#include <algorithm>
#include <iterator>

namespace authwall::state {

namespace {
std::string memory_key(std::string_view target, std::string_view rule) {
  std::string k(rule);
  k += '\n';
  k += target;
  return k;
}
}  // namespace

std::uint32_t MemoryOffenceHistory::count_since(std::string_view target, std::string_view rule,
                                                UnixMicros since) {
  std::lock_guard lock(mu_);
  auto it = times_.find(memory_key(target, rule));
  if (it == times_.end()) return 0;
  return static_cast<std::uint32_t>(
      std::count_if(it->second.begin(), it->second.end(), [&](UnixMicros t) { return t >= since; }));
}

bool MemoryOffenceHistory::record(std::string_view target, std::string_view rule,
                                  UnixMicros time) {
  std::lock_guard lock(mu_);
  times_[memory_key(target, rule)].push_back(time);
  return true;
}

std::size_t MemoryOffenceHistory::prune(UnixMicros before) {
  std::lock_guard lock(mu_);
  std::size_t removed = 0;
  for (auto it = times_.begin(); it != times_.end();) {
    auto& v = it->second;
    const auto old = std::remove_if(v.begin(), v.end(), [&](UnixMicros t) { return t < before; });
    removed += static_cast<std::size_t>(v.end() - old);
    v.erase(old, v.end());
    it = v.empty() ? times_.erase(it) : std::next(it);
  }
  return removed;
}

namespace {

constexpr const char* kSchema =
    "CREATE TABLE IF NOT EXISTS rule_offences ("
    "  target TEXT NOT NULL,"      // what was banned: "192.0.2.7", "2001:db8:1::/64"
    "  rule TEXT NOT NULL,"
    "  time_us INTEGER NOT NULL"   // microseconds since the Unix epoch, UTC
    ");"
    "CREATE INDEX IF NOT EXISTS rule_offences_target_time ON rule_offences(target, time_us);";

}  // namespace

std::unique_ptr<SqliteOffenceStore> SqliteOffenceStore::open(const std::string& path,
                                                             std::string& error) {
  sqlite3* db = open_state_database(path, kSchema, error);
  if (db == nullptr) return nullptr;
  std::unique_ptr<SqliteOffenceStore> store(new SqliteOffenceStore(db));
  if (!store->prepare(error) || !store->load(error)) {
    error = "cannot read the offence history in " + path + ": " + error;
    return nullptr;
  }
  return store;
}

bool SqliteOffenceStore::prepare(std::string& error) {
  if (sqlite3_prepare_v2(db_, "INSERT INTO rule_offences(target, rule, time_us) VALUES (?1, ?2, ?3)",
                         -1, &insert_stmt_, nullptr) != SQLITE_OK) {
    error = sqlite3_errmsg(db_);
    return false;
  }
  return true;
}

bool SqliteOffenceStore::load(std::string& error) {
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(db_, "SELECT target, rule, time_us FROM rule_offences", -1, &stmt,
                         nullptr) != SQLITE_OK) {
    error = sqlite3_errmsg(db_);
    return false;
  }
  int rc;
  while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
    const auto text = [&](int col) {
      const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt, col));
      return std::string_view(p != nullptr ? p : "", static_cast<std::size_t>(sqlite3_column_bytes(stmt, col)));
    };
    memory_.record(text(0), text(1), sqlite3_column_int64(stmt, 2));
  }
  if (rc != SQLITE_DONE) error = sqlite3_errmsg(db_);
  sqlite3_finalize(stmt);
  return rc == SQLITE_DONE;
}

SqliteOffenceStore::~SqliteOffenceStore() {
  // A clean close keeps what was recorded (the daemon has flushed already; a restarting test
  // or tool may not have).
  flush();
  sqlite3_finalize(insert_stmt_);
  sqlite3_close(db_);
}

std::uint32_t SqliteOffenceStore::count_since(std::string_view target, std::string_view rule,
                                              UnixMicros since) {
  // From memory, flushed and pending records alike: never waits for the disk or a writer.
  return memory_.count_since(target, rule, since);
}

bool SqliteOffenceStore::record(std::string_view target, std::string_view rule, UnixMicros time) {
  std::unique_lock lock(pending_mu_);
  // The bound: normally the actions thread flushes after every batch and the list holds a few
  // records. If it has filled up anyway, writing inline (slow, but correct) beats growing
  // without limit or forgetting offences.
  if (pending_.size() >= kMaxPending) {
    lock.unlock();
    if (!flush()) return false;
    lock.lock();
  }
  pending_.push_back(PendingRecord{std::string(target), std::string(rule), time});
  memory_.record(target, rule, time);
  return true;
}

bool SqliteOffenceStore::flush() {
  std::lock_guard db_lock(db_mu_);
  // Take the list and write it without holding pending_mu_: record() on the I/O workers never
  // waits for this transaction.
  std::vector<PendingRecord> batch;
  {
    std::lock_guard lock(pending_mu_);
    batch.swap(pending_);
  }
  if (batch.empty()) return true;
  const auto give_back = [&] {
    std::lock_guard lock(pending_mu_);
    pending_.insert(pending_.begin(), std::make_move_iterator(batch.begin()),
                    std::make_move_iterator(batch.end()));
  };
  // One transaction for the whole list: one WAL append instead of one per record.
  if (sqlite3_exec(db_, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) != SQLITE_OK) {
    last_error_ = sqlite3_errmsg(db_);
    give_back();
    return false;
  }
  for (const PendingRecord& p : batch) {
    sqlite3_reset(insert_stmt_);
    sqlite3_bind_text(insert_stmt_, 1, p.target.data(), static_cast<int>(p.target.size()), SQLITE_STATIC);
    sqlite3_bind_text(insert_stmt_, 2, p.rule.data(), static_cast<int>(p.rule.size()), SQLITE_STATIC);
    sqlite3_bind_int64(insert_stmt_, 3, p.time);
    if (sqlite3_step(insert_stmt_) != SQLITE_DONE) {
      last_error_ = sqlite3_errmsg(db_);
      sqlite3_reset(insert_stmt_);
      sqlite3_clear_bindings(insert_stmt_);
      sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
      give_back();
      return false;
    }
  }
  sqlite3_reset(insert_stmt_);
  // The bound strings are about to go: unbind before the batch is freed.
  sqlite3_clear_bindings(insert_stmt_);
  if (sqlite3_exec(db_, "COMMIT", nullptr, nullptr, nullptr) != SQLITE_OK) {
    last_error_ = sqlite3_errmsg(db_);
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    give_back();
    return false;
  }
  return true;
}

std::size_t SqliteOffenceStore::pending() {
  std::lock_guard lock(pending_mu_);
  return pending_.size();
}

int SqliteOffenceStore::prune(UnixMicros before) {
  std::lock_guard db_lock(db_mu_);
  memory_.prune(before);
  int pruned_pending = 0;
  {
    std::lock_guard lock(pending_mu_);
    const auto old = std::remove_if(pending_.begin(), pending_.end(),
                                    [&](const PendingRecord& p) { return p.time < before; });
    pruned_pending = static_cast<int>(pending_.end() - old);
    pending_.erase(old, pending_.end());
  }
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(db_, "DELETE FROM rule_offences WHERE time_us < ?1", -1, &stmt, nullptr) !=
      SQLITE_OK) {
    last_error_ = sqlite3_errmsg(db_);
    return -1;
  }
  sqlite3_bind_int64(stmt, 1, before);
  const int rc = sqlite3_step(stmt);
  sqlite3_finalize(stmt);
  if (rc != SQLITE_DONE) {
    last_error_ = sqlite3_errmsg(db_);
    return -1;
  }
  return sqlite3_changes(db_) + pruned_pending;
}

std::string SqliteOffenceStore::last_error() {
  std::lock_guard lock(db_mu_);
  return last_error_;
}

}  // namespace authwall::state
