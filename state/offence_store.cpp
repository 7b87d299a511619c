#include "state/offence_store.h"
#include "state/sqlite_database.h"

#include <sqlite3.h>

#include <algorithm>

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
  if (!store->prepare(error)) {
    error = "cannot prepare statements on " + path + ": " + error;
    return nullptr;
  }
  return store;
}

bool SqliteOffenceStore::prepare(std::string& error) {
  if (sqlite3_prepare_v2(db_, "SELECT count(*) FROM rule_offences WHERE target = ?1 AND rule = ?2 AND time_us >= ?3",
                         -1, &count_stmt_, nullptr) != SQLITE_OK ||
      sqlite3_prepare_v2(db_, "INSERT INTO rule_offences(target, rule, time_us) VALUES (?1, ?2, ?3)",
                         -1, &insert_stmt_, nullptr) != SQLITE_OK) {
    error = sqlite3_errmsg(db_);
    return false;
  }
  return true;
}

SqliteOffenceStore::~SqliteOffenceStore() {
  {
    // A clean close keeps what was recorded (the daemon has flushed already; a restarting
    // test or tool may not have).
    std::lock_guard lock(mu_);
    flush_locked();
  }
  sqlite3_finalize(count_stmt_);
  sqlite3_finalize(insert_stmt_);
  sqlite3_close(db_);
}

std::uint32_t SqliteOffenceStore::count_since(std::string_view target, std::string_view rule,
                                              UnixMicros since) {
  std::lock_guard lock(mu_);
  sqlite3_reset(count_stmt_);
  sqlite3_bind_text(count_stmt_, 1, target.data(), static_cast<int>(target.size()), SQLITE_TRANSIENT);
  sqlite3_bind_text(count_stmt_, 2, rule.data(), static_cast<int>(rule.size()), SQLITE_TRANSIENT);
  sqlite3_bind_int64(count_stmt_, 3, since);
  std::uint32_t n = 0;
  if (sqlite3_step(count_stmt_) == SQLITE_ROW) {
    n = static_cast<std::uint32_t>(sqlite3_column_int64(count_stmt_, 0));
  } else {
    last_error_ = sqlite3_errmsg(db_);
  }
  sqlite3_reset(count_stmt_);
  // Records not flushed yet count as well: two bans of one target in quick succession escalate
  // exactly as if every record had been written at once.
  for (const PendingRecord& p : pending_) {
    if (p.time >= since && p.target == target && p.rule == rule) ++n;
  }
  return n;
}

bool SqliteOffenceStore::record(std::string_view target, std::string_view rule, UnixMicros time) {
  std::lock_guard lock(mu_);
  // The bound: normally the actions thread flushes after every batch and the list holds a few
  // records. If it has filled up anyway, writing inline (slow, but correct) beats growing
  // without limit or forgetting offences.
  if (pending_.size() >= kMaxPending && !flush_locked()) return false;
  pending_.push_back(PendingRecord{std::string(target), std::string(rule), time});
  return true;
}

bool SqliteOffenceStore::flush() {
  std::lock_guard lock(mu_);
  return flush_locked();
}

bool SqliteOffenceStore::flush_locked() {
  if (pending_.empty()) return true;
  // One transaction for the whole list: one WAL append instead of one per record.
  if (sqlite3_exec(db_, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) != SQLITE_OK) {
    last_error_ = sqlite3_errmsg(db_);
    return false;
  }
  for (const PendingRecord& p : pending_) {
    sqlite3_reset(insert_stmt_);
    sqlite3_bind_text(insert_stmt_, 1, p.target.data(), static_cast<int>(p.target.size()), SQLITE_STATIC);
    sqlite3_bind_text(insert_stmt_, 2, p.rule.data(), static_cast<int>(p.rule.size()), SQLITE_STATIC);
    sqlite3_bind_int64(insert_stmt_, 3, p.time);
    if (sqlite3_step(insert_stmt_) != SQLITE_DONE) {
      last_error_ = sqlite3_errmsg(db_);
      sqlite3_reset(insert_stmt_);
      sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
      return false;
    }
  }
  sqlite3_reset(insert_stmt_);
  // The bound strings are about to go: unbind before clearing the list.
  sqlite3_clear_bindings(insert_stmt_);
  if (sqlite3_exec(db_, "COMMIT", nullptr, nullptr, nullptr) != SQLITE_OK) {
    last_error_ = sqlite3_errmsg(db_);
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    return false;
  }
  pending_.clear();
  return true;
}

std::size_t SqliteOffenceStore::pending() {
  std::lock_guard lock(mu_);
  return pending_.size();
}

int SqliteOffenceStore::prune(UnixMicros before) {
  std::lock_guard lock(mu_);
  const auto old = std::remove_if(pending_.begin(), pending_.end(),
                                  [&](const PendingRecord& p) { return p.time < before; });
  const int pruned_pending = static_cast<int>(pending_.end() - old);
  pending_.erase(old, pending_.end());
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(db_, "DELETE FROM rule_offences WHERE time_us < ?1", -1, &stmt, nullptr) !=
      SQLITE_OK) {
    last_error_ = sqlite3_errmsg(db_);
    return -1;
  }
  sqlite3_bind_int64(stmt, 1, before);
  const bool ok = sqlite3_step(stmt) == SQLITE_DONE;
  sqlite3_finalize(stmt);
  if (!ok) {
    last_error_ = sqlite3_errmsg(db_);
    return -1;
  }
  return sqlite3_changes(db_) + pruned_pending;
}

std::string SqliteOffenceStore::last_error() {
  std::lock_guard lock(mu_);
  return last_error_;
}

}  // namespace authwall::state
