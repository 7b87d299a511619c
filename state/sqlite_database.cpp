#include "state/sqlite_database.h"

namespace authwall::state {

sqlite3* open_state_database(const std::string& path, const char* schema, std::string& error) {
  sqlite3* db = nullptr;
  const int rc = sqlite3_open_v2(path.c_str(), &db,
                                 SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                                 nullptr);
  if (rc != SQLITE_OK) {
    error = "cannot open state database " + path + ": " +
            (db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
    sqlite3_close(db);
    return nullptr;
  }
  // Other stores write to the same file through their own connections: wait for their locks
  // instead of failing, and use WAL so readers never block the writer.
  sqlite3_busy_timeout(db, 5000);
  char* msg = nullptr;
  // With synchronous=NORMAL a commit only appends to the WAL; the syncs happen at checkpoints.
  // Automatic checkpoints run inside whichever commit crosses the threshold, i.e. on the ban
  // path: raise it (8k pages, ~32 MiB) so the daemon's own checkpoints (WalCheckpointer, every
  // second) do the work and the automatic one is only a bound.
  if (sqlite3_exec(db,
                   "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; "
                   "PRAGMA wal_autocheckpoint=8192;",
                   nullptr, nullptr, &msg) != SQLITE_OK ||
      sqlite3_exec(db, schema, nullptr, nullptr, &msg) != SQLITE_OK) {
    error = "cannot initialise state database " + path + ": " + (msg != nullptr ? msg : "?");
    sqlite3_free(msg);
    sqlite3_close(db);
    return nullptr;
  }
  return db;
}

std::unique_ptr<WalCheckpointer> WalCheckpointer::open(const std::string& path,
                                                       std::string& error) {
  sqlite3* db = open_state_database(path, "", error);
  if (db == nullptr) return nullptr;
  return std::unique_ptr<WalCheckpointer>(new WalCheckpointer(db));
}

WalCheckpointer::~WalCheckpointer() { sqlite3_close(db_); }

int WalCheckpointer::checkpoint() noexcept {
  int log_frames = 0;
  int moved = 0;
  if (sqlite3_wal_checkpoint_v2(db_, nullptr, SQLITE_CHECKPOINT_PASSIVE, &log_frames, &moved) !=
      SQLITE_OK) {
    return -1;
  }
  return log_frames - moved;
}

}  // namespace authwall::state
