// The SQLite source, preforkctl's side: enqueue (one transaction per batch), stats,
// one job or a list of them, retry now, delete.
#include <algorithm>

#include "sources/job_ids.hpp"
#include "sources/job_messages.hpp"
#include "sources/sqlite/sqlite_schema.hpp"
#include "sources/sqlite/sqlite_source.hpp"
#include "util/log.hpp"

namespace preforkd::sqlite {

EnqueueResult SqliteSource::enqueue(const NewJob& job) { return enqueue_batch({&job, 1}).front(); }

std::vector<EnqueueResult> SqliteSource::enqueue_batch(std::span<const NewJob> jobs) {
  std::vector<EnqueueResult> results;
  results.reserve(jobs.size());
  int64_t now = now_ms();
  WriteTransaction tx(*db_);
  for (const auto& job : jobs) {
    auto insert = db_->prepare(
        "INSERT OR IGNORE INTO preforkd_jobs (queue, payload, priority, run_at, max_attempts, "
        "unique_key, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) RETURNING id");
    insert.bind(1, job.queue).bind(2, job.payload).bind(3, job.priority);
    insert.bind(4, job.run_at ? std::chrono::duration_cast<milliseconds>(
                                    job.run_at->time_since_epoch()).count()
                              : now);
    insert.bind(5, job.max_attempts).bind(7, now);
    if (job.unique_key.empty()) insert.bind_null(6);
    else insert.bind(6, job.unique_key);
    if (insert.step()) {
      results.push_back({std::to_string(insert.int_column(0)), false});
      insert.run();
      continue;
    }
    auto existing = db_->prepare(
        "SELECT id FROM preforkd_jobs WHERE unique_key = ?1 AND state IN ('queued', 'running', 'retry')");
    existing.bind(1, job.unique_key);
    if (!existing.step()) throw SourceError("sqlite " + path_ + ": insert into queue " + job.queue + " was refused");
    results.push_back({std::to_string(existing.int_column(0)), true});
  }
  tx.commit();
  return results;
}

std::vector<QueueStats> SqliteSource::stats() {
  std::vector<QueueStats> out;
  auto stmt = db_->prepare("SELECT queue, state, count(*) FROM preforkd_jobs GROUP BY queue, state ORDER BY queue");
  while (stmt.step()) {
    std::string queue = stmt.text_column(0);
    if (out.empty() || out.back().queue != queue) out.push_back(QueueStats{queue});
    out.back().add(job_state_from_name(stmt.text_column(1)).value_or(JobState::queued),
                   stmt.int_column(2));
  }
  return out;
}

#define PREFORKD_JOB_COLUMNS                                                              \
  "id, queue, payload, state, priority, attempts, max_attempts, coalesce(unique_key, ''), " \
  "coalesce(last_error, ''), coalesce(locked_by, ''), created_at, run_at, started_at, "     \
  "finished_at, lease_until"

JobInfo SqliteSource::read_info(const Statement& row) {
  JobInfo info;
  info.id = std::to_string(row.int_column(0));
  info.queue = row.text_column(1);
  info.payload = row.text_column(2);
  info.state = job_state_from_name(row.text_column(3)).value_or(JobState::queued);
  info.priority = static_cast<int>(row.int_column(4));
  info.attempts = static_cast<int>(row.int_column(5));
  info.max_attempts = static_cast<int>(row.int_column(6));
  info.unique_key = row.text_column(7);
  info.last_error = row.text_column(8);
  info.locked_by = row.text_column(9);
  info.created_at = from_ms(row.int_column(10));
  info.run_at = from_ms(row.int_column(11));
  if (!row.is_null(12)) info.started_at = from_ms(row.int_column(12));
  if (!row.is_null(13)) info.finished_at = from_ms(row.int_column(13));
  if (!row.is_null(14)) info.lease_until = from_ms(row.int_column(14));
  return info;
}

JobInfo SqliteSource::get(const std::string& id) {
  auto number = parse_job_id(id);
  if (!number) throw JobNotFound("no job with id '" + id + "' (SQLite job ids are positive numbers)");
  auto stmt = db_->prepare("SELECT " PREFORKD_JOB_COLUMNS " FROM preforkd_jobs WHERE id = ?1");
  stmt.bind(1, *number);
  if (!stmt.step()) throw JobNotFound("no job with id " + id + " in " + path_);
  return read_info(stmt);
}

std::vector<JobInfo> SqliteSource::list(const JobFilter& filter) {
  auto stmt = db_->prepare("SELECT " PREFORKD_JOB_COLUMNS " FROM preforkd_jobs "
                            "WHERE (?1 = '' OR queue = ?1) AND (?2 = '' OR state = ?2) "
                            "ORDER BY id LIMIT ?3");
  stmt.bind(1, filter.queue).bind(2, filter.state ? job_state_name(*filter.state) : "");
  stmt.bind(3, static_cast<int64_t>(filter.limit));
  std::vector<JobInfo> out;
  while (stmt.step()) out.push_back(read_info(stmt));
  return out;
}

void SqliteSource::retry_now(const std::string& id) {
  JobInfo info = get(id);
  if (info.state != JobState::dead && info.state != JobState::retry)
    throw JobNotFound("job " + id + " is " + job_state_name(info.state) +
                      ": only dead or retry-waiting jobs can be retried");
  WriteTransaction tx(*db_);
  if (!info.unique_key.empty()) {
    // A dead job's key is free: another job may hold it now (at most one waiting or
    // running job per key). Said plainly, not as the unique index's SQL error.
    auto holder = db_->prepare("SELECT id, state FROM preforkd_jobs WHERE unique_key = ?1 AND "
                               "state IN ('queued', 'running', 'retry') AND id <> ?2");
    holder.bind(1, info.unique_key).bind(2, std::stoll(id));
    if (holder.step())
      throw JobNotFound(unique_key_held_message(id, info.unique_key, holder.text_column(0),
                                                holder.text_column(1)));
  }
  db_->prepare("UPDATE preforkd_jobs SET state = 'queued', attempts = 0, run_at = ?2, "
               "finished_at = NULL WHERE id = ?1 AND state IN ('dead', 'retry')")
      .bind(1, std::stoll(id))
      .bind(2, now_ms())
      .run();
  tx.commit();
}

void SqliteSource::remove(const std::string& id) {
  JobInfo info = get(id);  // throws JobNotFound for an unknown id
  WriteTransaction tx(*db_);
  db_->prepare("DELETE FROM preforkd_jobs WHERE id = ?1 AND state <> 'running'").bind(1, std::stoll(id)).run();
  if (db_->changes() == 0) {
    info = get(id);  // claimed since it was read, or gone
    throw JobNotFound(running_job_not_deleted_message(id, info.locked_by));
  }
  tx.commit();
}

int64_t SqliteSource::remove_queue(const std::string& queue, std::span<const JobState> states) {
  WriteTransaction tx(*db_);
  db_->prepare("DELETE FROM preforkd_jobs WHERE queue = ?1 AND state <> 'running' "
               "AND instr(?2, ',' || state || ',') > 0")
      .bind(1, queue)
      .bind(2, deletable_states_text(states))
      .run();
  int64_t deleted = db_->changes();
  tx.commit();
  return deleted;
}

}  // namespace preforkd::sqlite
