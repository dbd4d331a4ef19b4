// The PostgreSQL job table: created with its indexes on first use (or by `preforkctl
// migrate`) under an advisory lock, and a table of the same name that is not ours refused.
#pragma once

#include "sources/postgres/pg_connection.hpp"
#include "sources/postgres/pg_table.hpp"

namespace preforkd::postgres {

// Makes sure schema, table and indexes exist. Many processes on many hosts may call it
// at once: only one creates, the others wait for its transaction and find it done.
// Throws SourceError (no privilege, a foreign table of that name, connection lost).
void prepare_schema(Connection& db, const TableName& table);

}  // namespace preforkd::postgres
