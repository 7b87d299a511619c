#include "state/ban_store.h"
#include "state/sqlite_database.h"

#include <sqlite3.h>

namespace authwall::state {
namespace {

constexpr const char* kSchema =
    "CREATE TABLE IF NOT EXISTS ban_history ("
    "  id INTEGER PRIMARY KEY,"
    "  action TEXT NOT NULL,"       // 'ban' | 'unban'
    "  target TEXT NOT NULL,"       // canonical: "192.0.2.7", "2001:db8:1::/64"
    "  rule TEXT NOT NULL,"         // for an unban: the rule of the ban it ended, if known
    "  source TEXT NOT NULL,"       // 'auto' | 'manual'
    "  created_us INTEGER NOT NULL,"
    "  expires_us INTEGER"          // NULL for unbans
    ");"
    "CREATE INDEX IF NOT EXISTS ban_history_target ON ban_history(target, id);"
    "CREATE INDEX IF NOT EXISTS ban_history_created ON ban_history(created_us);"
    "CREATE TABLE IF NOT EXISTS ban_active ("
    "  target TEXT PRIMARY KEY,"
    "  rule TEXT NOT NULL,"
    "  source TEXT NOT NULL,"
    "  created_us INTEGER NOT NULL,"
    "  expires_us INTEGER NOT NULL"
    ") WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS ban_active_expires ON ban_active(expires_us);";

BanSource parse_source(const unsigned char* text) {
  return text != nullptr && std::string_view(reinterpret_cast<const char*>(text)) == "manual"
             ? BanSource::kManual
             : BanSource::kAuto;
}

std::string column_text(sqlite3_stmt* st, int col) {
  const unsigned char* t = sqlite3_column_text(st, col);
  return t != nullptr ? std::string(reinterpret_cast<const char*>(t)) : std::string();
}

// SQLITE_TRANSIENT: SQLite copies the text, so no binding outlives the string it came from.
void bind_text(sqlite3_stmt* st, int idx, std::string_view text) {
  sqlite3_bind_text(st, idx, text.data(), static_cast<int>(text.size()), SQLITE_TRANSIENT);
}

}  // namespace

std::string_view to_string(BanSource s) noexcept {
  return s == BanSource::kManual ? "manual" : "auto";
}

std::unique_ptr<BanStore> BanStore::open(const std::string& path, std::string& error) {
  sqlite3* db = open_state_database(path, kSchema, error);
  if (db == nullptr) return nullptr;
  std::unique_ptr<BanStore> store(new BanStore(db));
  if (!store->prepare_statements(error)) {
    error = "cannot prepare statements on " + path + ": " + error;
    return nullptr;
  }
  return store;
}

bool BanStore::prepare_statements(std::string& error) {
  struct {
    sqlite3_stmt** stmt;
    const char* sql;
  } const statements[] = {
      {&insert_history_,
       "INSERT INTO ban_history(action, target, rule, source, created_us, expires_us) "
       "VALUES (?1, ?2, COALESCE(?3, (SELECT rule FROM ban_active WHERE target = ?2), ''), ?4, "
       "?5, ?6)"},
      {&upsert_active_,
       "INSERT INTO ban_active(target, rule, source, created_us, expires_us) "
       "VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT(target) DO UPDATE SET rule = excluded.rule, "
       "source = excluded.source, created_us = excluded.created_us, "
       "expires_us = excluded.expires_us"},
      {&delete_active_, "DELETE FROM ban_active WHERE target = ?1"},
      {&select_active_,
       "SELECT target, rule, source, created_us, expires_us FROM ban_active "
       "WHERE expires_us > ?1 ORDER BY target"},
      {&purge_, "DELETE FROM ban_active WHERE expires_us <= ?1"},
      {&prune_, "DELETE FROM ban_history WHERE created_us < ?1"},
      {&select_history_,
       "SELECT action, rule, source, created_us, expires_us FROM ban_history "
       "WHERE target = ?1 ORDER BY id"},
  };
  for (const auto& s : statements) {
    if (sqlite3_prepare_v2(db_, s.sql, -1, s.stmt, nullptr) != SQLITE_OK) {
      error = sqlite3_errmsg(db_);
      return false;
    }
  }
  return true;
}

BanStore::~BanStore() {
  for (sqlite3_stmt* st : {insert_history_, upsert_active_, delete_active_, select_active_, purge_,
                           prune_, select_history_}) {
    sqlite3_finalize(st);
  }
  sqlite3_close(db_);
}

bool BanStore::fail(const char* what) {
  last_error_ = std::string(what) + ": " + sqlite3_errmsg(db_);
  if (!sqlite3_get_autocommit(db_)) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
  return false;
}

bool BanStore::record_bans(std::span<const BanRecord> bans) {
  std::lock_guard lock(mu_);
  if (bans.empty()) return true;
  if (sqlite3_exec(db_, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) != SQLITE_OK) {
    return fail("cannot begin a transaction");
  }
  for (const BanRecord& b : bans) {
    const std::string target = b.target.to_string();
    const std::string_view source = to_string(b.source);
    sqlite3_reset(insert_history_);
    bind_text(insert_history_, 1, "ban");
    bind_text(insert_history_, 2, target);
    bind_text(insert_history_, 3, b.rule);
    bind_text(insert_history_, 4, source);
    sqlite3_bind_int64(insert_history_, 5, b.created);
    sqlite3_bind_int64(insert_history_, 6, b.expires);
    if (sqlite3_step(insert_history_) != SQLITE_DONE) return fail("cannot record a ban");
    sqlite3_reset(upsert_active_);
    bind_text(upsert_active_, 1, target);
    bind_text(upsert_active_, 2, b.rule);
    bind_text(upsert_active_, 3, source);
    sqlite3_bind_int64(upsert_active_, 4, b.created);
    sqlite3_bind_int64(upsert_active_, 5, b.expires);
    if (sqlite3_step(upsert_active_) != SQLITE_DONE) return fail("cannot record a ban");
  }
  if (sqlite3_exec(db_, "COMMIT", nullptr, nullptr, nullptr) != SQLITE_OK) {
    return fail("cannot commit bans");
  }
  return true;
}

bool BanStore::record_unbans(std::span<const IpPrefix> targets, BanSource source,
                             UnixMicros now) {
  std::lock_guard lock(mu_);
  if (targets.empty()) return true;
  if (sqlite3_exec(db_, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) != SQLITE_OK) {
    return fail("cannot begin a transaction");
  }
  for (const IpPrefix& t : targets) {
    const std::string target = t.to_string();
    sqlite3_reset(insert_history_);
    bind_text(insert_history_, 1, "unban");
    bind_text(insert_history_, 2, target);
    sqlite3_bind_null(insert_history_, 3);  // the rule of the ban being ended
    bind_text(insert_history_, 4, to_string(source));
    sqlite3_bind_int64(insert_history_, 5, now);
    sqlite3_bind_null(insert_history_, 6);
    if (sqlite3_step(insert_history_) != SQLITE_DONE) return fail("cannot record an unban");
    sqlite3_reset(delete_active_);
    bind_text(delete_active_, 1, target);
    if (sqlite3_step(delete_active_) != SQLITE_DONE) return fail("cannot record an unban");
  }
  if (sqlite3_exec(db_, "COMMIT", nullptr, nullptr, nullptr) != SQLITE_OK) {
    return fail("cannot commit unbans");
  }
  return true;
}

bool BanStore::active_bans(UnixMicros now, std::vector<BanRecord>& out) {
  std::lock_guard lock(mu_);
  out.clear();
  sqlite3_reset(select_active_);
  sqlite3_bind_int64(select_active_, 1, now);
  int rc;
  while ((rc = sqlite3_step(select_active_)) == SQLITE_ROW) {
    BanRecord r;
    const std::string target = column_text(select_active_, 0);
    // Rows are written only by record_bans() from parsed prefixes; one that does not parse was
    // edited by hand and is skipped rather than banning something unintended.
    if (!IpPrefix::parse(target, r.target)) continue;
    r.rule = column_text(select_active_, 1);
    r.source = parse_source(sqlite3_column_text(select_active_, 2));
    r.created = sqlite3_column_int64(select_active_, 3);
    r.expires = sqlite3_column_int64(select_active_, 4);
    out.push_back(std::move(r));
  }
  sqlite3_reset(select_active_);
  if (rc != SQLITE_DONE) return fail("cannot read active bans");
  return true;
}

long BanStore::purge_expired(UnixMicros now) {
  std::lock_guard lock(mu_);
  sqlite3_reset(purge_);
  sqlite3_bind_int64(purge_, 1, now);
  if (sqlite3_step(purge_) != SQLITE_DONE) {
    fail("cannot purge expired bans");
    return -1;
  }
  return sqlite3_changes(db_);
}

long BanStore::prune_history(UnixMicros before) {
  std::lock_guard lock(mu_);
  sqlite3_reset(prune_);
  sqlite3_bind_int64(prune_, 1, before);
  if (sqlite3_step(prune_) != SQLITE_DONE) {
    fail("cannot prune ban history");
    return -1;
  }
  return sqlite3_changes(db_);
}

bool BanStore::history(const IpPrefix& target, std::vector<HistoryEntry>& out) {
  std::lock_guard lock(mu_);
  out.clear();
  const std::string text = target.to_string();
  sqlite3_reset(select_history_);
  bind_text(select_history_, 1, text);
  int rc;
  while ((rc = sqlite3_step(select_history_)) == SQLITE_ROW) {
    HistoryEntry h;
    h.ban = column_text(select_history_, 0) == "ban";
    h.rule = column_text(select_history_, 1);
    h.source = parse_source(sqlite3_column_text(select_history_, 2));
    h.created = sqlite3_column_int64(select_history_, 3);
    h.expires = sqlite3_column_int64(select_history_, 4);
    out.push_back(std::move(h));
  }
  sqlite3_reset(select_history_);
  if (rc != SQLITE_DONE) return fail("cannot read ban history");
  return true;
}

std::string BanStore::last_error() {
  std::lock_guard lock(mu_);
  return last_error_;
}

}  // namespace authwall::state
