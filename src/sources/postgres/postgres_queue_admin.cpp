// The PostgreSQL source, preforkctl's side: enqueue (chunked INSERTs in one
// transaction), stats, one job or a list of them, delete, retry now.
#include <charconv>

#include "sources/job_ids.hpp"
#include "sources/job_messages.hpp"
#include "sources/postgres/pg_array.hpp"
#include "sources/postgres/postgres_source.hpp"
#include "util/log.hpp"

namespace preforkd::postgres {

void PostgresSource::insert_chunk(std::span<const NewJob> jobs, std::vector<EnqueueResult>& results,
                                  std::map<std::string, size_t>& unresolved) {
  std::vector<Param> queue, payload, priority, run_at, max_attempts, unique_key;
  for (const auto& job : jobs) {
    queue.push_back(job.queue);
    payload.push_back(job.payload);
    priority.push_back(std::to_string(job.priority));
    run_at.push_back(job.run_at ? Param(std::to_string(std::chrono::duration_cast<milliseconds>(
                                                           job.run_at->time_since_epoch()).count()))
                                : std::nullopt);
    max_attempts.push_back(std::to_string(job.max_attempts));
    unique_key.push_back(job.unique_key.empty() ? std::nullopt : Param(job.unique_key));
  }
  auto rows = db_.run("insert", sql_.insert,
                      {array_literal(queue), array_literal(payload), array_literal(priority),
                       array_literal(run_at), array_literal(max_attempts), array_literal(unique_key)},
                      "enqueue " + std::to_string(jobs.size()) + " job(s)");
  for (int i = 0; i < rows.rows(); ++i) {
    bool duplicate = rows.text(i, 2) == "t";
    results.push_back({rows.text(i, 0), duplicate});
    if (duplicate) unresolved.emplace(rows.text(i, 1), results.size() - 1);
  }
}

std::vector<EnqueueResult> PostgresSource::enqueue_batch(std::span<const NewJob> jobs) {
  std::vector<EnqueueResult> results;
  results.reserve(jobs.size());
  // unique key -> first result that names it; duplicates in one batch share the key.
  std::map<std::string, size_t> unresolved;
  std::vector<std::string> queues;
  for (const auto& job : jobs)
    if (std::find(queues.begin(), queues.end(), job.queue) == queues.end()) queues.push_back(job.queue);

  Transaction tx(db_);
  for (size_t at = 0; at < jobs.size(); at += batch_rows)
    insert_chunk(jobs.subspan(at, std::min(batch_rows, jobs.size() - at)), results, unresolved);
  if (!unresolved.empty()) {
    // A skipped row's id is the holder's: a job committed earlier, or one of this batch.
    std::vector<std::string> keys;
    for (const auto& [key, index] : unresolved) keys.push_back(key);
    auto rows = db_.run("holders", sql_.holders, {array_literal(keys)}, "look up unique keys");
    std::map<std::string, std::string> holder;
    for (int i = 0; i < rows.rows(); ++i) holder[rows.text(i, 0)] = rows.text(i, 1);
    for (size_t i = 0; i < results.size(); ++i) {
      if (!results[i].duplicate) continue;
      auto it = holder.find(jobs[i].unique_key);
      if (it == holder.end())
        db_.fail("enqueue into queue " + jobs[i].queue,
                 "the job holding unique key '" + jobs[i].unique_key +
                     "' finished while this one was enqueued; nothing was enqueued, try again");
      results[i].id = it->second;
    }
  }
  db_.run("notify", sql_.notify, {channel_, array_literal(queues)}, "notify the workers");
  tx.commit();
  return results;
}

std::vector<QueueStats> PostgresSource::stats() {
  std::vector<QueueStats> out;
  auto rows = db_.run("stats", sql_.stats, {}, "count jobs");
  for (int i = 0; i < rows.rows(); ++i) {
    std::string queue = rows.text(i, 0);
    if (out.empty() || out.back().queue != queue) out.push_back(QueueStats{queue});
    out.back().add(job_state_from_name(rows.text(i, 1)).value_or(JobState::queued),
                   rows.integer(i, 2));
  }
  return out;
}

JobInfo PostgresSource::read_info(const Result& rows, int row) {
  JobInfo info;
  info.id = rows.text(row, 0);
  info.queue = rows.text(row, 1);
  info.payload = rows.text(row, 2);
  info.state = job_state_from_name(rows.text(row, 3)).value_or(JobState::queued);
  info.priority = static_cast<int>(rows.integer(row, 4));
  info.attempts = static_cast<int>(rows.integer(row, 5));
  info.max_attempts = static_cast<int>(rows.integer(row, 6));
  info.unique_key = rows.text(row, 7);
  info.last_error = rows.text(row, 8);
  info.locked_by = rows.text(row, 9);
  info.created_at = from_ms(rows.integer(row, 10));
  info.run_at = from_ms(rows.integer(row, 11));
  if (!rows.is_null(row, 12)) info.started_at = from_ms(rows.integer(row, 12));
  if (!rows.is_null(row, 13)) info.finished_at = from_ms(rows.integer(row, 13));
  if (!rows.is_null(row, 14)) info.lease_until = from_ms(rows.integer(row, 14));
  return info;
}

std::string PostgresSource::number(const std::string& id) const {
  if (!parse_job_id(id)) throw JobNotFound("no job with id '" + id + "' (PostgreSQL job ids are positive numbers)");
  return id;  // the server reads "003" as 3: no text made per job on the workers' path
}

JobInfo PostgresSource::get(const std::string& id) {
  auto rows = db_.run("get", sql_.get, {number(id)}, "read job " + id);
  if (rows.rows() == 0)
    throw JobNotFound("no job with id " + id + " in " + table_.schema + "." + table_.table + " at " + db_.label());
  return read_info(rows, 0);
}

std::vector<JobInfo> PostgresSource::list(const JobFilter& filter) {
  auto rows = db_.run("list", sql_.list,
                      {filter.queue, filter.state ? job_state_name(*filter.state) : "",
                       std::to_string(filter.limit)},
                      "list jobs");
  std::vector<JobInfo> out;
  for (int i = 0; i < rows.rows(); ++i) out.push_back(read_info(rows, i));
  return out;
}

void PostgresSource::remove(const std::string& id) {
  for (int tries = 1;; ++tries) {
    auto rows = db_.run("remove", sql_.remove, {number(id)}, "delete job " + id);
    if (rows.rows() > 0) return;
    JobInfo info = get(id);  // throws JobNotFound for an unknown id
    if (info.state == JobState::running) throw JobNotFound(running_job_not_deleted_message(id, info.locked_by));
    // It ended between the two statements (it was running when the DELETE ran).
    if (tries == 3)
      throw JobNotFound("job " + id + " changed state while being deleted (now " +
                        job_state_name(info.state) + "): try again");
  }
}

int64_t PostgresSource::remove_queue(const std::string& queue, std::span<const JobState> states) {
  // In slices, each its own short transaction: rows locked for that long only.
  constexpr int64_t slice = 10000;
  const std::string wanted = deletable_states_text(states);
  int64_t deleted = 0;
  for (;;) {
    auto rows = db_.run("remove_queue", sql_.remove_queue, {queue, wanted, std::to_string(slice)},
                        "delete jobs of queue " + queue);
    int64_t count = std::stoll(rows.text(0, 0));
    deleted += count;
    if (count < slice) return deleted;
  }
}

void PostgresSource::retry_now(const std::string& id) {
  JobInfo info = get(id);  // throws JobNotFound for an unknown id
  if (!info.unique_key.empty() && (info.state == JobState::dead || info.state == JobState::retry)) {
    // A dead job's key is free: another job may hold it now. Said plainly, not as the
    // unique index's "duplicate key value" (which still ends a retry racing an enqueue).
    auto holders = db_.run("holders", sql_.holders, {array_literal(std::vector<std::string>{info.unique_key})},
                           "look up the holder of unique key '" + info.unique_key + "'");
    for (int i = 0; i < holders.rows(); ++i) {
      std::string holder = holders.text(i, 1);
      if (holder != id)
        throw JobNotFound(unique_key_held_message(id, info.unique_key, holder,
                                                  job_state_name(get(holder).state)));
    }
  }
  auto rows = db_.run("retry_now", sql_.retry_now, {number(id), channel_}, "requeue job " + id);
  if (rows.rows() > 0) return;
  info = get(id);
  throw JobNotFound("job " + id + " is " + job_state_name(info.state) +
                    ": only dead or retry-waiting jobs can be retried");
}

}  // namespace preforkd::postgres
