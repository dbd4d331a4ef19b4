// The SQLite source on its own, without a daemon: a database written by an earlier
// preforkd keeps its jobs when a newer one opens it (the schema is migrated in place,
// PRAGMA user_version, never made anew), and a claim's batch around suspect jobs.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "preforkd/job_source.hpp"

namespace {

// The table as preforkd wrote it before schema versions (user_version 0): frozen here
// on purpose, it is what databases in the field hold.
constexpr const char* version_0_schema = R"sql(
CREATE TABLE preforkd_jobs (
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
  finished_at  INTEGER
);
CREATE INDEX preforkd_jobs_due
  ON preforkd_jobs (queue, priority DESC, run_at, id) WHERE state IN ('queued', 'retry');
CREATE INDEX preforkd_jobs_lease ON preforkd_jobs (lease_until) WHERE state = 'running';
CREATE INDEX preforkd_jobs_finished ON preforkd_jobs (finished_at) WHERE state = 'done';
CREATE UNIQUE INDEX preforkd_jobs_unique ON preforkd_jobs (unique_key)
  WHERE unique_key IS NOT NULL AND state IN ('queued', 'running', 'retry');
PRAGMA application_id = 1346784068;  -- "PFKD"
INSERT INTO preforkd_jobs (queue, payload, run_at, created_at) VALUES ('q', '{"n": 1}', 0, 0);
INSERT INTO preforkd_jobs (queue, payload, state, run_at, attempts, locked_by, lease_until, created_at)
  VALUES ('q', '{"n": 2}', 'running', 0, 1, 'gone:1', 1, 0);
)sql";

class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "preforkd-schema-XXXXXX").string();
    if (!mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

// Runs `sql` on `path` with the plain SQLite API; returns the first column of the
// first row (or "" when there is none).
std::string sql_value(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  EXPECT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  std::string value;
  sqlite3_stmt* stmt = nullptr;
  const char* rest = sql.c_str();
  while (*rest) {
    if (sqlite3_prepare_v2(db, rest, -1, &stmt, &rest) != SQLITE_OK) {
      ADD_FAILURE() << sqlite3_errmsg(db) << " in: " << sql;
      break;
    }
    if (!stmt) break;  // trailing whitespace
    if (sqlite3_step(stmt) == SQLITE_ROW && sqlite3_column_text(stmt, 0))
      value = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
    sqlite3_finalize(stmt);
  }
  sqlite3_close(db);
  return value;
}

preforkd::SourceConfig sqlite_source(const std::string& path, int prefetch) {
  preforkd::SourceConfig config;
  config.name = "default";
  config.type = "sqlite";
  config.settings["path"] = path;
  config.settings["prefetch"] = std::to_string(prefetch);
  return config;
}

}  // namespace

TEST(SqliteSchema, ADatabaseOfTheFirstSchemaIsMigratedWithItsJobs) {
  TempDir dir;
  std::string path = dir.file("jobs.db");
  sql_value(path, version_0_schema);
  ASSERT_EQ(sql_value(path, "PRAGMA user_version"), "0");

  auto config = sqlite_source(path, 5);
  auto source = preforkd::open_job_source(config);
  EXPECT_EQ(sql_value(path, "PRAGMA user_version"), "1");
  EXPECT_EQ(sql_value(path, "SELECT count(*) FROM pragma_table_info('preforkd_jobs') WHERE name = 'suspect'"), "1");

  // Both jobs are there: the queued one, and the one whose lease ran out, alone in its
  // worker's hands, so charged (attempt 2).
  std::vector<std::string> queues{"q"};
  auto first = source->fetch(queues, std::chrono::milliseconds(0));
  ASSERT_TRUE(first);
  auto second = source->fetch(queues, std::chrono::milliseconds(0));
  ASSERT_TRUE(second);
  EXPECT_EQ(first->payload, R"({"n": 1})");
  EXPECT_EQ(first->attempt, 1);
  EXPECT_EQ(second->payload, R"({"n": 2})");
  EXPECT_EQ(second->attempt, 2);
  source->complete(*first);
  source->complete(*second);
  source.reset();  // writes the completions
  EXPECT_EQ(sql_value(path, "SELECT count(*) FROM preforkd_jobs WHERE state = 'done'"), "2");

  // Opened again: already current, nothing to do.
  preforkd::open_job_source(config);
  EXPECT_EQ(sql_value(path, "PRAGMA user_version"), "1");
}

// A suspect job (its lease ran out before) is claimed alone: not even the last place of
// a batch that a first queue did not fill may take it.
TEST(SqliteSource, ABatchLeavesASuspectJobOfALaterQueueAlone) {
  TempDir dir;
  std::string path = dir.file("jobs.db");
  auto source = preforkd::open_job_source(sqlite_source(path, 2));
  auto job_on = [](const std::string& queue) {
    preforkd::NewJob job;
    job.queue = queue;
    job.payload = "{}";
    return job;
  };
  auto high = source->enqueue(job_on("high"));
  auto low = source->enqueue(job_on("low"));
  sql_value(path, "UPDATE preforkd_jobs SET suspect = 1 WHERE id = " + low.id);

  std::vector<std::string> queues{"high", "low"};
  auto first = source->fetch(queues, std::chrono::milliseconds(0));
  ASSERT_TRUE(first);
  EXPECT_EQ(first->id, high.id);
  EXPECT_EQ(sql_value(path, "SELECT state FROM preforkd_jobs WHERE id = " + low.id), "queued");
  // Then it comes alone, and is no longer suspect while it runs.
  auto second = source->fetch(queues, std::chrono::milliseconds(0));
  ASSERT_TRUE(second);
  EXPECT_EQ(second->id, low.id);
  EXPECT_EQ(sql_value(path, "SELECT state || ' ' || suspect FROM preforkd_jobs WHERE id = " + low.id), "running 0");
}
