#pragma once
// Offence history: every ban the rules engine issued (target, rule, time), so repeat offenders
// get escalating bans (PRODUCT.md "Escalation") — also after a restart, when it lives in SQLite.
//
// Only consulted when a ban happens, never per event. Implementations are thread-safe (the
// daemon may run several rule shards over one store, and its actions thread flushes it).
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/civil_time.h"

struct sqlite3;
struct sqlite3_stmt;

namespace authwall::state {

class OffenceHistory {
 public:
  virtual ~OffenceHistory() = default;
  // Bans of `target` by `rule` recorded at a time >= `since`.
  virtual std::uint32_t count_since(std::string_view target, std::string_view rule,
                                    UnixMicros since) = 0;
  // Stores one ban. Returns false if it could not be stored (the ban itself still stands).
  // A recorded ban is counted by count_since() at once, even if it is not durable yet.
  virtual bool record(std::string_view target, std::string_view rule, UnixMicros time) = 0;
};

// In memory: `authwall check -c` (a replay must not touch the daemon's state) and tests.
class MemoryOffenceHistory final : public OffenceHistory {
 public:
  std::uint32_t count_since(std::string_view target, std::string_view rule,
                            UnixMicros since) override;
  bool record(std::string_view target, std::string_view rule, UnixMicros time) override;
  // Forgets records older than `before`; returns how many.
  std::size_t prune(UnixMicros before);

 private:
  std::mutex mu_;
  // "rule\ntarget" -> ban times
  std::unordered_map<std::string, std::vector<UnixMicros>> times_;
};

// SQLite at `state.path`: its own connection and its own table (`rule_offences`), so it shares
// the database file with the ban store without sharing anything else. WAL mode, busy timeout.
//
// Every record is also kept in memory (loaded at open, pruned with the table), and
// count_since() answers from there: the rules engine asks on the I/O worker while it decides a
// ban, inside the ban's measured latency, and must not wait for the disk or for a writer.
// record() notes the offence in memory and appends it to a pending list; flush() writes the
// pending records in one transaction. An INSERT on the worker would wait for the database's
// write lock, which the actions thread holds while it records the bans it is about to commit
// to the kernel (SQLite's busy handler then sleeps in steps of milliseconds). So the daemon's
// actions thread flushes after each kernel commit, when idle and at shutdown, and the
// destructor flushes too. The price: a crash loses the offence records made since the last
// flush (at most one actions batch; not the bans, which the ban store writes before the kernel
// sees them), so after such a crash a repeat offender may get a shorter ban than escalation
// would have given. Memory: one entry per ban within the history window (the daemon prunes
// hourly), about 100 bytes each.
class SqliteOffenceStore final : public OffenceHistory {
 public:
  // Bound of the pending list: far above what one actions batch produces.
  static constexpr std::size_t kMaxPending = 10000;

  // Opens or creates the database. Returns nullptr and sets `error` (one sentence naming the
  // path) on failure.
  static std::unique_ptr<SqliteOffenceStore> open(const std::string& path, std::string& error);
  ~SqliteOffenceStore() override;
  SqliteOffenceStore(const SqliteOffenceStore&) = delete;
  SqliteOffenceStore& operator=(const SqliteOffenceStore&) = delete;

  std::uint32_t count_since(std::string_view target, std::string_view rule,
                            UnixMicros since) override;
  // Appends to the pending list. If the list has reached kMaxPending (the flushing thread has
  // stalled, or the database keeps failing), flushes inline first, on the caller's thread;
  // returns false, and does not keep the record, if that flush fails.
  bool record(std::string_view target, std::string_view rule, UnixMicros time) override;
  // Writes the pending records in one transaction. Returns false on a database error; they
  // then stay pending and the next flush tries again.
  bool flush();
  // Deletes records older than `before`, pending ones included (history beyond the window is
  // never consulted). Returns the number deleted, or -1 on error.
  int prune(UnixMicros before);
  // Records not yet flushed.
  std::size_t pending();
  // The last SQLite error message (for logs), empty if none.
  std::string last_error();

 private:
  struct PendingRecord {
    std::string target;
    std::string rule;
    UnixMicros time;
  };

  explicit SqliteOffenceStore(sqlite3* db) : db_(db) {}
  bool prepare(std::string& error);
  bool load(std::string& error);

  MemoryOffenceHistory memory_;  // every record, flushed or not (thread-safe itself)
  std::mutex pending_mu_;
  std::vector<PendingRecord> pending_;  // recorded, not yet in the database; oldest first
  std::mutex db_mu_;                    // the connection, its statements, last_error_
  sqlite3* db_ = nullptr;
  sqlite3_stmt* insert_stmt_ = nullptr;
  std::string last_error_;
};

}  // namespace authwall::state
