#pragma once
// BanStore: every ban and unban, persisted in SQLite, so bans survive restarts and reboots.
//
// Two tables in the state database (`state.path`), through this store's own connection:
//   ban_history — append-only log of every ban and unban (what, why, when, until when, by whom);
//   ban_active  — one row per target currently banned, with its expiry (what reconciliation
//                 restores at start-up).
// The rules stage keeps its offence history (`rule_offences`) in the same file through another
// connection; WAL mode and a busy timeout let both write without failing on each other's locks.
// synchronous=NORMAL: in WAL mode a committed transaction survives the process being killed
// (kill -9); only a power cut can lose the last moments, and reconciliation tolerates that.
//
// Thread-safety: every method takes an internal lock, so the actions thread can write while the
// control socket lists bans. Times are microseconds since the Unix epoch, passed in by the caller.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/civil_time.h"
#include "common/ip_address.h"

struct sqlite3;
struct sqlite3_stmt;

namespace authwall::state {

enum class BanSource : std::uint8_t { kAuto, kManual };
std::string_view to_string(BanSource s) noexcept;  // "auto", "manual"

struct BanRecord {
  IpPrefix target;         // what is in the nftables set
  std::string rule;        // the rule that decided it; "manual" for `authwall ban`
  BanSource source = BanSource::kAuto;
  UnixMicros created = 0;  // when the ban (or its latest refresh) was issued
  UnixMicros expires = 0;  // when it ends
};

class BanStore {
 public:
  // Opens or creates the database and this store's tables. Returns nullptr and sets `error`
  // (one sentence naming the path) on failure.
  static std::unique_ptr<BanStore> open(const std::string& path, std::string& error);
  ~BanStore();
  BanStore(const BanStore&) = delete;
  BanStore& operator=(const BanStore&) = delete;

  // Records bans (a re-ban replaces the target's active row: new rule, created and expiry),
  // all in one transaction. Returns false (see last_error()) if nothing was stored.
  bool record_bans(std::span<const BanRecord> bans);
  bool record_ban(const BanRecord& ban) { return record_bans(std::span(&ban, 1)); }
  // Records unbans at `now` and removes the targets' active rows, in one transaction.
  bool record_unbans(std::span<const IpPrefix> targets, BanSource source, UnixMicros now);
  bool record_unban(const IpPrefix& target, BanSource source, UnixMicros now) {
    return record_unbans(std::span(&target, 1), source, now);
  }

  // Bans still running at `now` (expires > now), ordered by target text.
  bool active_bans(UnixMicros now, std::vector<BanRecord>& out);
  // Deletes active rows that ended at or before `now`; returns how many, or -1 on error.
  long purge_expired(UnixMicros now);
  // Deletes history entries created before `before`; returns how many, or -1 on error.
  long prune_history(UnixMicros before);
  // History rows (for tests and audits): bans and unbans of `target`, oldest first.
  struct HistoryEntry {
    bool ban = true;  // false: unban
    std::string rule;
    BanSource source = BanSource::kAuto;
    UnixMicros created = 0;
    UnixMicros expires = 0;  // 0 for unbans
  };
  bool history(const IpPrefix& target, std::vector<HistoryEntry>& out);

  std::string last_error();

 private:
  explicit BanStore(sqlite3* db) : db_(db) {}
  bool prepare_statements(std::string& error);
  bool fail(const char* what);  // records sqlite3_errmsg, rolls back, returns false

  std::mutex mu_;
  sqlite3* db_ = nullptr;
  sqlite3_stmt* insert_history_ = nullptr;
  sqlite3_stmt* upsert_active_ = nullptr;
  sqlite3_stmt* delete_active_ = nullptr;
  sqlite3_stmt* select_active_ = nullptr;
  sqlite3_stmt* purge_ = nullptr;
  sqlite3_stmt* prune_ = nullptr;
  sqlite3_stmt* select_history_ = nullptr;
  std::string last_error_;
};

}  // namespace authwall::state
