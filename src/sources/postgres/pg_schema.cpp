// Creation and check of the PostgreSQL job table (see pg_schema.hpp).
#include "sources/postgres/pg_schema.hpp"

#include <algorithm>

#include "sources/postgres/pg_array.hpp"

namespace preforkd::postgres {
namespace {

// The columns of the first job table: a table that lacks any of them is not ours.
constexpr const char* columns[] = {"id",         "queue",       "payload",   "priority",
                                   "state",      "run_at",      "attempts",  "max_attempts",
                                   "unique_key", "last_error",  "locked_by", "lease_until",
                                   "created_at", "started_at",  "finished_at"};
// Columns added since, each with what adds it to a table made before it.
struct AddedColumn {
  const char* name;
  const char* definition;
};
constexpr AddedColumn added_columns[] = {
    // A job whose lease ran out: claimed alone from then on (pg_queries.cpp).
    {"suspect", "boolean NOT NULL DEFAULT false"},
};
constexpr const char* index_suffixes[] = {"due", "next", "lease", "finished", "unique"};

std::string schema_sql(const TableName& t) {
  const std::string q = t.qualified();
  return "CREATE TABLE IF NOT EXISTS " + q + R"( (
  id           bigserial   PRIMARY KEY,
  queue        text        NOT NULL,
  payload      text        NOT NULL,
  priority     integer     NOT NULL DEFAULT 0,
  state        text        NOT NULL DEFAULT 'queued'
               CHECK (state IN ('queued', 'running', 'done', 'retry', 'dead')),
  run_at       timestamptz NOT NULL DEFAULT now(),
  attempts     integer     NOT NULL DEFAULT 0,
  max_attempts integer     NOT NULL DEFAULT 0,
  unique_key   text,
  last_error   text,
  locked_by    text,
  lease_until  timestamptz,
  created_at   timestamptz NOT NULL DEFAULT now(),
  started_at   timestamptz,
  finished_at  timestamptz,
  suspect      boolean     NOT NULL DEFAULT false
);
CREATE INDEX IF NOT EXISTS )" + t.index("due") + " ON " + q +
         " (queue, priority DESC, run_at, id) WHERE state IN ('queued', 'retry');\n"
         "CREATE INDEX IF NOT EXISTS " + t.index("next") + " ON " + q +
         " (queue, run_at) WHERE state IN ('queued', 'retry');\n"
         "CREATE INDEX IF NOT EXISTS " + t.index("lease") + " ON " + q +
         " (lease_until) WHERE state = 'running';\n"
         "CREATE INDEX IF NOT EXISTS " + t.index("finished") + " ON " + q +
         " (finished_at) WHERE state = 'done';\n"
         "CREATE UNIQUE INDEX IF NOT EXISTS " + t.index("unique") + " ON " + q +
         " (unique_key) WHERE unique_key IS NOT NULL AND state IN ('queued', 'running', 'retry');\n";
}

struct Found {
  bool table = false;
  std::vector<std::string> missing_columns;  // of `columns`: not a job table
  std::vector<const AddedColumn*> missing_added;  // an older job table
  bool all_indexes = false;
};

Found look(Connection& db, const TableName& t) {
  std::vector<std::string> column_names(std::begin(columns), std::end(columns));
  for (const auto& added : added_columns) column_names.push_back(added.name);
  std::vector<std::string> index_names;
  for (const char* suffix : index_suffixes) index_names.push_back(t.table + "_" + suffix);
  // The table through pg_class, not to_regclass(): to_regclass reads the newest catalog,
  // while pg_attribute is read with the statement's snapshot, so a table committed in
  // between was seen without any of its columns and refused as foreign. One snapshot
  // for all three answers.
  auto r = db.exec(
      "WITH job_table AS (SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
      "    WHERE n.nspname = $2 AND c.relname = $3) "
      "SELECT EXISTS (SELECT 1 FROM job_table), "
      "  ARRAY(SELECT c FROM unnest($1::text[]) c WHERE NOT EXISTS (SELECT 1 FROM pg_attribute a "
      "    JOIN job_table ON a.attrelid = job_table.oid "
      "    WHERE a.attname = c AND a.attnum > 0 AND NOT a.attisdropped)), "
      "  (SELECT count(*) FROM pg_indexes WHERE schemaname = $2 AND tablename = $3 "
      "    AND indexname = ANY($4::text[])) = $5",
      {array_literal(column_names), t.schema, t.table, array_literal(index_names),
       std::to_string(index_names.size())},
      "look for the job table " + t.qualified());
  Found found;
  found.table = r.text(0, 0) == "t";
  std::string missing = r.text(0, 1);  // {a,b}
  if (missing.size() > 2) {
    std::string name;
    for (char c : missing.substr(1, missing.size() - 2)) {
      if (c == ',') found.missing_columns.push_back(name), name.clear();
      else name += c;
    }
    found.missing_columns.push_back(name);
  }
  for (const auto& added : added_columns) {
    auto it = std::find(found.missing_columns.begin(), found.missing_columns.end(), added.name);
    if (it == found.missing_columns.end()) continue;
    found.missing_columns.erase(it);
    found.missing_added.push_back(&added);
  }
  found.all_indexes = r.text(0, 2) == "t";
  return found;
}

void refuse_foreign(Connection& db, const TableName& t, const Found& found) {
  if (!found.table || found.missing_columns.empty()) return;
  std::string names;
  for (const auto& c : found.missing_columns) names += (names.empty() ? "" : ", ") + c;
  throw SourceError("postgres " + db.label() + ": table " + t.schema + "." + t.table +
                    " exists and is not a preforkd job table (it lacks columns: " + names +
                    "); set the source's 'table' (or 'schema') to a new name");
}

}  // namespace

void prepare_schema(Connection& db, const TableName& t) {
  Found found = look(db, t);
  refuse_foreign(db, t, found);
  // Already there: no lock, no DDL. Workers with only row privileges start fine.
  if (found.table && found.all_indexes && found.missing_added.empty()) return;

  Transaction tx(db);
  // Held to the end of the transaction: concurrent CREATE ... IF NOT EXISTS of the same
  // table can otherwise fail on the catalog's unique indexes.
  db.exec("SELECT pg_advisory_xact_lock(" + std::to_string(t.migration_lock_key()) + ")",
          "take the migration lock");
  found = look(db, t);
  refuse_foreign(db, t, found);
  if (!found.table || !found.all_indexes) {
    // CREATE SCHEMA IF NOT EXISTS wants the CREATE privilege even when the schema exists.
    auto schema = db.exec("SELECT 1 FROM pg_namespace WHERE nspname = $1", {t.schema},
                          "look for schema " + t.schema);
    if (schema.rows() == 0)
      db.exec("CREATE SCHEMA IF NOT EXISTS " + TableName::quote(t.schema), "create schema " + t.schema);
    db.exec(schema_sql(t), "create the job table " + t.schema + "." + t.table);
  }
  // A table of an earlier preforkd: its rows stay, the new columns get their default.
  if (found.table)
    for (const AddedColumn* added : found.missing_added)
      db.exec("ALTER TABLE " + t.qualified() + " ADD COLUMN IF NOT EXISTS " + added->name + " " +
                  added->definition,
              std::string("add column ") + added->name + " to the job table " + t.schema + "." + t.table +
                  " (made by an earlier preforkd: start preforkd once as the table's owner, or run "
                  "this ALTER TABLE yourself)");
  tx.commit();
}

}  // namespace preforkd::postgres
