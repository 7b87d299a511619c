#pragma once
// Opening the state database: one SQLite file (state.path) shared by several stores, each with
// its own connection and its own tables.
#include <sqlite3.h>

#include <string>

namespace authwall::state {

// Opens (creating if needed) the database at `path` with WAL journaling, a busy timeout (the
// other stores' connections write to the same file) and runs `schema` (CREATE ... IF NOT
// EXISTS statements). Returns nullptr and sets `error` to one sentence on failure; the caller
// owns the connection (sqlite3_close).
sqlite3* open_state_database(const std::string& path, const char* schema, std::string& error);

}  // namespace authwall::state
