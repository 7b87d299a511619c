#pragma once
// Offence history: every ban the rules engine issued (target, rule, time), so repeat offenders
// get escalating bans (PRODUCT.md "Escalation") — also after a restart, when it lives in SQLite.
//
// Only consulted when a ban happens, never per event. Implementations are thread-safe (the
// daemon may run several rule shards over one store).
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
  virtual bool record(std::string_view target, std::string_view rule, UnixMicros time) = 0;
};

// In memory: `authwall check -c` (a replay must not touch the daemon's state) and tests.
class MemoryOffenceHistory final : public OffenceHistory {
 public:
  std::uint32_t count_since(std::string_view target, std::string_view rule,
                            UnixMicros since) override;
  bool record(std::string_view target, std::string_view rule, UnixMicros time) override;

 private:
  std::mutex mu_;
  // "rule\ntarget" -> ban times
  std::unordered_map<std::string, std::vector<UnixMicros>> times_;
};

// SQLite at `state.path`: its own connection and its own table (`rule_offences`), so it shares
// the database file with the ban store without sharing anything else. WAL mode, busy timeout.
class SqliteOffenceStore final : public OffenceHistory {
 public:
  // Opens or creates the database. Returns nullptr and sets `error` (one sentence naming the
  // path) on failure.
  static std::unique_ptr<SqliteOffenceStore> open(const std::string& path, std::string& error);
  ~SqliteOffenceStore() override;
  SqliteOffenceStore(const SqliteOffenceStore&) = delete;
  SqliteOffenceStore& operator=(const SqliteOffenceStore&) = delete;

  std::uint32_t count_since(std::string_view target, std::string_view rule,
                            UnixMicros since) override;
  bool record(std::string_view target, std::string_view rule, UnixMicros time) override;
  // Deletes records older than `before` (history beyond the window is never consulted).
  // Returns the number deleted, or -1 on error.
  int prune(UnixMicros before);
  // The last SQLite error message (for logs), empty if none.
  std::string last_error();

 private:
  explicit SqliteOffenceStore(sqlite3* db) : db_(db) {}
  bool prepare(std::string& error);

  std::mutex mu_;
  sqlite3* db_ = nullptr;
  sqlite3_stmt* count_stmt_ = nullptr;
  sqlite3_stmt* insert_stmt_ = nullptr;
  std::string last_error_;
};

}  // namespace authwall::state
