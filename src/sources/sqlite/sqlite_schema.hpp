// The SQLite job table: schema creation on first use, and the check that refuses a
// file that belongs to some other program.
#pragma once

#include "sources/sqlite/sqlite_db.hpp"

namespace preforkd::sqlite {

// PRAGMA application_id of a preforkd job database ("PFKD").
constexpr int64_t application_id = 0x50464b44;

// WAL mode, synchronous=NORMAL, the table and its indexes. Throws SourceError for a
// database that has other tables and is not ours.
void prepare_schema(Db& db);

}  // namespace preforkd::sqlite
