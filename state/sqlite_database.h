#pragma once
// Opening the state database: one SQLite file (state.path) shared by several stores, each with
// its own connection and its own tables.
#include <sqlite3.h>

#include <memory>
#include <string>

namespace authwall::state {

// Opens (creating if needed) the database at `path` with WAL journaling, a busy timeout (the
// other stores' connections write to the same file) and runs `schema` (CREATE ... IF NOT
// EXISTS statements). Returns nullptr and sets `error` to one sentence on failure; the caller
// owns the connection (sqlite3_close).
sqlite3* open_state_database(const std::string& path, const char* schema, std::string& error);

// A connection that only checkpoints: moves the write-ahead log into the database file and
// syncs it, on the thread that calls checkpoint(). The stores' own connections would otherwise
// do it inside whichever commit makes the log cross `wal_autocheckpoint` — on a slow disk a sync
// of tens of milliseconds inside the ban path. A passive checkpoint neither waits for nor
// blocks the writers (WAL mode), so the daemon runs it every second on its control thread and
// the stores' automatic checkpoint stays a bound that is not reached.
class WalCheckpointer {
 public:
  // Returns nullptr and sets `error` (one sentence naming the path) on failure.
  static std::unique_ptr<WalCheckpointer> open(const std::string& path, std::string& error);
  ~WalCheckpointer();
  WalCheckpointer(const WalCheckpointer&) = delete;
  WalCheckpointer& operator=(const WalCheckpointer&) = delete;

  // One passive checkpoint. Returns the number of log frames still not in the database
  // (0: all moved; the next writer starts the log over), or -1 on error.
  int checkpoint() noexcept;

 private:
  explicit WalCheckpointer(sqlite3* db) : db_(db) {}
  sqlite3* db_;
};

}  // namespace authwall::state
