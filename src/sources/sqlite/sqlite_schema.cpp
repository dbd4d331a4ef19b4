// Schema of the SQLite job table (see sqlite_schema.hpp).
#include "sources/sqlite/sqlite_schema.hpp"

#include <sys/statvfs.h>

namespace preforkd::sqlite {
namespace {

constexpr const char* schema_sql = R"sql(
CREATE TABLE IF NOT EXISTS preforkd_jobs (
  id           INTEGER PRIMARY KEY AUTOINCREMENT,
  queue        TEXT    NOT NULL,
  payload      TEXT    NOT NULL,
  priority     INTEGER NOT NULL DEFAULT 0,
  state        TEXT    NOT NULL DEFAULT 'queued'
               CHECK (state IN ('queued', 'running', 'done', 'retry', 'dead')),
  run_at       INTEGER NOT NULL,
  attempts     INTEGER NOT NULL DEFAULT 0,
  max_attempts INTEGER NOT NULL DEFAULT 0,
  unique_key   TEXT,
  last_error   TEXT,
  locked_by    TEXT,
  lease_until  INTEGER,
  created_at   INTEGER NOT NULL,
  started_at   INTEGER,
  finished_at  INTEGER,
  suspect      INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS preforkd_jobs_due
  ON preforkd_jobs (queue, priority DESC, run_at, id) WHERE state IN ('queued', 'retry');
CREATE INDEX IF NOT EXISTS preforkd_jobs_lease
  ON preforkd_jobs (lease_until) WHERE state = 'running';
CREATE INDEX IF NOT EXISTS preforkd_jobs_finished
  ON preforkd_jobs (finished_at) WHERE state = 'done';
CREATE UNIQUE INDEX IF NOT EXISTS preforkd_jobs_unique
  ON preforkd_jobs (unique_key)
  WHERE unique_key IS NOT NULL AND state IN ('queued', 'running', 'retry');
)sql";

// Schema versions (PRAGMA user_version), each what a database of the one before needs:
//   1: `suspect`, set on a job whose lease ran out: claimed alone (see sqlite_source.cpp).
constexpr int64_t schema_version = 1;
constexpr const char* migrate_to_1 = "ALTER TABLE preforkd_jobs ADD COLUMN suspect INTEGER NOT NULL DEFAULT 0";

int64_t pragma_value(Db& db, const char* sql) {
  auto stmt = db.prepare(sql);
  int64_t value = stmt.step() ? stmt.int_column(0) : 0;
  stmt.reset();
  return value;
}

// Below this much free space, a connection checkpoints its write-ahead log every 16
// pages instead of SQLite's 1,000 (4 MiB). The log only gives its space back once its
// pages are in the database, and taking them in may grow the database: on a disk freed
// by less than the log would grow to, the log took all of it, the database could not
// take the log back, and nothing moved until more was freed. Where space is plenty,
// the larger log is kept: fewer checkpoints, each with its fsync.
constexpr unsigned long long low_space_bytes = 32ull << 20;

bool short_of_space(const std::string& path) {
  struct statvfs fs {};
  return ::statvfs(path.c_str(), &fs) == 0 &&
         static_cast<unsigned long long>(fs.f_bavail) * fs.f_frsize < low_space_bytes;
}

}  // namespace

void prepare_schema(Db& db) {
  // WAL: readers never block the writer, and commits append to one file that the
  // waiting workers watch. NORMAL: no fsync per commit in WAL mode; a power loss may
  // lose the last commits but never corrupts the file. The switch of a new file takes
  // an exclusive lock from under a read lock, which SQLite refuses at once (no busy
  // handler) while another process opens the same new file: retried.
  db.exec_retrying_busy("PRAGMA journal_mode=WAL");
  db.exec("PRAGMA synchronous=NORMAL");
  if (short_of_space(db.path())) db.exec("PRAGMA wal_autocheckpoint=16");

  if (pragma_value(db, "PRAGMA application_id") == application_id &&
      pragma_value(db, "PRAGMA user_version") >= schema_version)
    return;  // ours and current (made or migrated in one transaction)

  WriteTransaction tx(db);
  int64_t id = pragma_value(db, "PRAGMA application_id");
  if (id != application_id) {
    auto tables = db.prepare("SELECT group_concat(name, ', ') FROM sqlite_schema WHERE type = 'table'");
    std::string names = tables.step() ? tables.text_column(0) : "";
    tables.reset();
    if (!names.empty() || id != 0)
      throw SourceError("sqlite " + db.path() + ": not a preforkd job database (it holds tables: " +
                        (names.empty() ? "none" : names) +
                        "); point the source's 'path' at a new file");
    db.exec(schema_sql);
    db.exec(("PRAGMA application_id=" + std::to_string(application_id)).c_str());
  } else if (pragma_value(db, "PRAGMA user_version") < 1) {
    // A database of an earlier preforkd: its jobs stay as they are.
    db.exec(migrate_to_1);
  }
  db.exec(("PRAGMA user_version=" + std::to_string(schema_version)).c_str());
  tx.commit();
}

}  // namespace preforkd::sqlite
